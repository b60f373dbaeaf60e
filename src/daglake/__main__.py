from daglake.cli import main

main()
