"""Surname data: compound surnames and the readings a surname takes that differ from the
character's everyday reading.

Compiled by the Huitong project from the standard readings of Chinese surnames (as given in
the 现代汉语词典 entries "姓" for each character); these are facts of the language, listed here
so pinyin keys match what the person is actually called.
"""

from __future__ import annotations

# Two-character surnames. A full name that starts with one of these and has at least three
# characters is split after the second character.
_COMPOUND_TEXT = """
    欧阳 司马 诸葛 上官 司徒 东方 夏侯 皇甫 尉迟 公孙 慕容 长孙 宇文 令狐 万俟 轩辕 端木 独孤
    南宫 西门 澹台 公冶 呼延 申屠 太史 闻人 赫连 钟离 百里 东郭 濮阳 拓跋 淳于 单于 第五 梁丘
    左丘 谷梁 段干 司空 司寇 亓官 仲孙 巫马 公良 乐正 壤驷 漆雕 宰父 公西 颛孙 子车 羊舌 微生
    东门 锺离 完颜 纳兰 爱新觉罗
"""
COMPOUND_SURNAMES: frozenset[str] = frozenset(_COMPOUND_TEXT.split())

# Surname readings (toneless pinyin) where the surname reading is not the character's most
# common one, or where pinyin software tends to guess wrong.
SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "区": "ou",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "盖": "ge",
    "尉迟": "yuchi",
    "万俟": "moqi",
    "单于": "chanyu",
    "长孙": "zhangsun",
    "乐": "yue",
    "乐正": "yuezheng",
    "缪": "miao",
    "覃": "qin",
    "翟": "zhai",
    "繁": "po",
    "隗": "wei",
    "召": "shao",
    "秘": "bi",
    "种": "chong",
    "折": "she",
    "员": "yun",
    "黑": "he",
    "重": "chong",
    "句": "gou",
    "能": "nai",
    "蕃": "pi",
    "祭": "zhai",
    "宓": "mi",
    "眭": "sui",
    "莘": "shen",
    "藏": "zang",
    "贲": "ben",
    "柏": "bai",
    "宿": "su",
    "燕": "yan",
    "洗": "xian",
    "冼": "xian",
    "郇": "xun",
    "逄": "pang",
    "尉": "wei",
    "沈": "shen",
    "薄": "bo",
    "华": "hua",
    "曲": "qu",
    "相": "xiang",
    "朝": "chao",
    "都": "du",
    "纪": "ji",
    "任": "ren",
    "过": "guo",
    "阚": "kan",
    "那": "na",
    "殷": "yin",
    "葛": "ge",
    "隽": "juan",
    "令狐": "linghu",
    "澹台": "tantai",
    "亓官": "qiguan",
    "褚": "chu",
    "蔺": "lin",
}

# The most frequent single-character surnames (about 85 % of the population), used to guess
# which token of a Latin-script name is the family name when the source did not say.
COMMON_SURNAMES: str = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃"
    "武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒"
    "阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓"
    "古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣"
    "巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝区朴"
)
