from checkin.cli import main

main()
