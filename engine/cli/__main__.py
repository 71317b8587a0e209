from hbt.engine.cli.main import entry

entry()
