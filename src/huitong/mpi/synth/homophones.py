"""Homophone and near-homophone character tables for the noise model.

Built at run time from a pool of characters used in names: characters are grouped by
toneless pinyin (homophones: 张/章, 伟/韦) and by the near-homophone key (刘/牛, 陈/岑,
王/万 …) — the confusions a clerk makes when writing down a name they heard.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

from faker.providers.person.zh_CN import Provider as _ZhPerson

from huitong.mpi.normalize.names import han_pinyin, near_homophone

__all__ = ["homophones", "name_characters", "near_homophones"]

# Common characters in given names beyond the generator's own list, so that most
# characters have a homophone to be confused with.
_EXTRA = (
    "玮薇卫维韦唯惟炜巍蔚章彰璋漳樟建健剑坚俭鉴舰金锦晋瑾谨劲京晶菁精景静婧境敬镜靖涛韬滔桃陶"
    "明鸣铭名茗冥敏闽珉岷华桦骅化花丽莉俐立力励黎梨李理礼里利红虹鸿宏洪弘泓鸿晨辰臣宸琛沉陈郴"
    "诚成承城乘程澄呈丞峰锋风枫丰锋凤奉芳方舫昉坊纺婷亭庭停廷霆挺颖莹英瑛鹰盈萤樱营赢影莺宁凝"
    "柠咛泞凌玲铃龄羚翎灵菱琳林淋霖麟临岚兰蓝澜斓男南楠难岭领罗洛珞骆刚钢纲岗港"
)


@lru_cache(maxsize=1)
def name_characters() -> tuple[str, ...]:
    """Characters used for given names (generator list plus common extras)."""
    chars = set("".join(_ZhPerson.first_names_male) + "".join(_ZhPerson.first_names_female))
    chars.update(_EXTRA)
    chars.update(ch for name in _ZhPerson.last_names for ch in name if len(name) == 1)
    return tuple(sorted(chars))


@lru_cache(maxsize=1)
def _groups() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    by_pinyin: dict[str, list[str]] = defaultdict(list)
    by_near: dict[str, list[str]] = defaultdict(list)
    for ch in name_characters():
        p = han_pinyin(ch)
        by_pinyin[p].append(ch)
        by_near[near_homophone(p)].append(ch)
    return dict(by_pinyin), dict(by_near)


def homophones(ch: str) -> list[str]:
    """Other characters read the same (toneless)."""
    return [c for c in _groups()[0].get(han_pinyin(ch), []) if c != ch]


def near_homophones(ch: str) -> list[str]:
    """Characters with the same near-homophone key but a different pinyin."""
    p = han_pinyin(ch)
    return [c for c in _groups()[1].get(near_homophone(p), []) if han_pinyin(c) != p]
