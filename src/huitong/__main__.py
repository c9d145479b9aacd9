from huitong.cli import main

main()
