from cohortbridge.cli.main import app

app()
