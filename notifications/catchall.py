"""The local SMTP catch-all for development and tests: accepts every message for any address and keeps
each one as a file (`<folder>/<time>-<id>.eml`); nothing is relayed anywhere.

    python -m notifications.catchall --port 8025 --dir .state/mail     (./stack up starts it)
    python -m notifications.catchall --read [--last N]                 (./stack mail)
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import signal
import sys
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class KeepToFolder:
    """aiosmtpd handler: every message becomes one file, written whole before it appears (rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.folder / f".{name}.tmp"
        body = envelope.original_content or envelope.content
        header = f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        tmp.write_bytes(header + (body if isinstance(body, bytes) else body.encode()))
        os.replace(tmp, self.folder / name)
        return "250 Message accepted for delivery"


def start(host: str, port: int, folder: Path) -> Controller:
    controller = Controller(KeepToFolder(folder), hostname=host, port=port, ready_timeout=10)
    controller.start()
    return controller


def messages(folder: Path) -> list[EmailMessage]:
    """Every kept message, oldest first."""
    out = []
    for path in sorted(folder.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out.append(parsed)  # type: ignore[arg-type]
    return out


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""  # type: ignore[union-attr]


def show(folder: Path, last: int) -> int:
    kept = messages(folder)
    if not kept:
        print(f"No mail in {folder}.")
        return 0
    for message in kept[-last:]:
        print(f"Date:    {message['Date']}\nTo:      {message['To']}\nSubject: {message['Subject']}\n")
        print(body_of(message).rstrip() + "\n" + "-" * 72)
    print(f"{len(kept)} message(s) in {folder}; showing the last {min(last, len(kept))}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="notifications.catchall", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORTAL_SMTP_PORT", "8025")))
    parser.add_argument("--dir", type=Path,
                        default=Path(os.environ.get("PORTAL_STATE_DIR", ".state")) / "mail")
    parser.add_argument("--read", action="store_true", help="print the kept mail instead of serving")
    parser.add_argument("--last", type=int, default=10, help="with --read: how many messages")
    args = parser.parse_args(argv)
    if args.read:
        return show(args.dir, args.last)
    controller = start(args.host, args.port, args.dir)
    print(f"SMTP catch-all on {args.host}:{args.port}, keeping mail in {args.dir}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
