"""A minimal IMAP4rev1 server (LOGIN, SELECT, FETCH, LOGOUT) serving one mailbox of seeded messages to curl.

Usage: python -m detector.lab.apps.imap_server IP PORT MAILDIR
"""

from __future__ import annotations

import socketserver
import sys
from pathlib import Path

MAILDIR: Path


class Handler(socketserver.StreamRequestHandler):
    def send(self, line: str | bytes) -> None:
        self.wfile.write(line if isinstance(line, bytes) else (line + "\r\n").encode())

    def handle(self) -> None:
        msgs = sorted(MAILDIR.glob("*.eml"))
        self.send("* OK [CAPABILITY IMAP4rev1] lab IMAP ready")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            parts = raw.decode(errors="replace").strip().split(" ", 2)
            if len(parts) < 2:
                continue
            tag, cmd = parts[0], parts[1].upper()
            arg = parts[2] if len(parts) > 2 else ""
            if cmd == "CAPABILITY":
                self.send("* CAPABILITY IMAP4rev1")
                self.send(f"{tag} OK CAPABILITY completed")
            elif cmd == "LOGIN":
                self.send(f"{tag} OK LOGIN completed")
            elif cmd in ("SELECT", "EXAMINE"):
                self.send(f"* {len(msgs)} EXISTS")
                self.send("* 0 RECENT")
                self.send("* OK [UIDVALIDITY 1] UIDs valid")
                self.send("* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)")
                self.send(f"{tag} OK [READ-WRITE] SELECT completed")
            elif cmd in ("FETCH", "UID") :
                # curl sends "UID FETCH n BODY[]" or "FETCH n BODY[]"
                words = arg.split()
                if cmd == "UID":
                    words = words[1:]
                n = int(words[0]) if words and words[0].isdigit() else 1
                body = msgs[n - 1].read_bytes() if 0 < n <= len(msgs) else b""
                uid = f" UID {n}" if cmd == "UID" else ""
                self.send(f"* {n} FETCH ({uid.strip()} BODY[] {{{len(body)}}}".replace("( ", "(").encode() + b"\r\n")
                self.send(body + b")\r\n")
                self.send(f"{tag} OK FETCH completed")
            elif cmd == "NOOP":
                self.send(f"{tag} OK NOOP completed")
            elif cmd == "LOGOUT":
                self.send("* BYE logging out")
                self.send(f"{tag} OK LOGOUT completed")
                return
            else:
                self.send(f"{tag} BAD unknown command")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    global MAILDIR
    ip, port, maildir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    MAILDIR = maildir
    with Server((ip, port), Handler) as srv:
        print("listening", flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
