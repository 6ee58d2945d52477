"""Email over SMTP (stdlib smtplib), optional STARTTLS and login."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage
from typing import Any

from spendscope.collector.alerts.channels.text import title
from spendscope.collector.alerts.channels.transport import Outcome
from spendscope.collector.alerts.config import EmailChannel

__all__ = ["render", "send"]


def render(channel: EmailChannel, payload: dict[str, Any]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"spendscope {title(payload)}"
    msg["From"] = channel.email_from
    msg["To"] = ", ".join(channel.email_to)
    details = json.dumps({k: v for k, v in payload.items() if k != "message"}, indent=2, default=str)
    msg.set_content(f"{payload['message']}\n\n{details}\n")
    return msg


def send(channel: EmailChannel, payload: dict[str, Any]) -> Outcome:
    try:
        with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=channel.timeout_s) as smtp:
            if channel.smtp_starttls:
                smtp.starttls()
            if channel.smtp_username and channel.smtp_password:
                smtp.login(channel.smtp_username, channel.smtp_password)
            refused = smtp.send_message(render(channel, payload))
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if refused:
        return Outcome(False, None, f"recipients refused: {', '.join(refused)}")
    return Outcome(True, 250)
