"""pyconfig: a Python program that writes a config file, reads it back with configparser, renames and
deletes files. Recorded by record.py; FACTS.md says what the trace of it must yield."""

import configparser
import json
import os

with open("app.ini", "w") as out:
    out.write("[server]\nhost = 127.0.0.1\nport = 8080\n")  # 38 bytes
parser = configparser.ConfigParser()
parser.read("app.ini")
with open("settings.json.tmp", "w") as out:
    json.dump({"port": parser.getint("server", "port")}, out)  # {"port": 8080}: 14 bytes
os.rename("settings.json.tmp", "settings.json")
os.unlink("app.ini")
print("port", parser.getint("server", "port"))
