"""A mail server that keeps every message instead of delivering it (runs inside a container).

    python3 smtp_sink.py PORT DIR [CERT KEY]

Speaks enough SMTP for an alerting client: EHLO/HELO, STARTTLS (when given a certificate),
AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. Each message is saved in DIR as
JSON: the envelope, the data, the credentials it authenticated with, and whether TLS was on.
"""

import base64
import json
import os
import socketserver
import ssl
import sys
import time

PORT, FOLDER = int(sys.argv[1]), sys.argv[2]
CERTIFICATE = sys.argv[3:5]


class Session(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def read(self) -> str:
        return self.rfile.readline().decode(errors="replace").rstrip("\r\n")

    def handle(self) -> None:
        self.tls = False
        self.credentials = None
        self.envelope = {"from": None, "to": []}
        self.reply("220 sink ESMTP")
        while True:
            line = self.read()
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                features = ["250-sink"]
                if CERTIFICATE and not self.tls:
                    features.append("250-STARTTLS")
                features.append("250 AUTH PLAIN LOGIN")
                for feature in features:
                    self.reply(feature)
            elif verb == "STARTTLS" and CERTIFICATE:
                self.reply("220 go ahead")
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*CERTIFICATE)
                self.connection = context.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")
                self.tls = True
            elif verb == "AUTH":
                self.authenticate(line.split()[1:])
            elif verb == "MAIL":
                self.envelope["from"] = line.split(":", 1)[1].strip()
                self.reply("250 ok")
            elif verb == "RCPT":
                self.envelope["to"].append(line.split(":", 1)[1].strip())
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 end with .")
                self.save(self.read_data())
                self.reply("250 kept")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif not line:
                return
            else:
                self.reply("502 not here")

    def authenticate(self, words: list[str]) -> None:
        if words[0].upper() == "PLAIN":
            encoded = words[1] if len(words) > 1 else (self.reply("334 "), self.read())[1]
            _, user, password = base64.b64decode(encoded).decode().split("\0")
        else:
            self.reply("334 " + base64.b64encode(b"Username:").decode())
            user = base64.b64decode(self.read()).decode()
            self.reply("334 " + base64.b64encode(b"Password:").decode())
            password = base64.b64decode(self.read()).decode()
        self.credentials = {"user": user, "password": password}
        self.reply("235 ok")

    def read_data(self) -> str:
        lines = []
        while True:
            line = self.read()
            if line == ".":
                return "\n".join(lines)
            lines.append(line[1:] if line.startswith("..") else line)

    def save(self, data: str) -> None:
        message = {**self.envelope, "data": data, "auth": self.credentials, "tls": self.tls}
        name = os.path.join(FOLDER, f"{time.time():.6f}.json")
        with open(name + ".part", "w") as handle:
            json.dump(message, handle)
        os.rename(name + ".part", name)
        self.envelope = {"from": None, "to": []}


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


os.makedirs(FOLDER, exist_ok=True)
Server(("0.0.0.0", PORT), Session).serve_forever()
