from nnlint.cli import main

main()
