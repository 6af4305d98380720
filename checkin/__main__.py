from checkin.app.cli.main import main

main()
