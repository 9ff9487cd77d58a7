"""Sending an alert to the webhook and the mailbox: a few tries each, then a log line, never an exception.

An alert that cannot be delivered must not fail the sensor that raised it (which would then alert about
itself) nor, ever, a run or a load. What is logged is redacted: the webhook URL carries its own credentials
and the SMTP password is one.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.config import AlertSettings
from pipelines.orchestration.alerts.message import Alert

ATTEMPTS = 3
PAUSE_SECONDS = 1.0  # doubled after each failed attempt
TIMEOUT_SECONDS = 10.0
IMPLICIT_TLS_PORT = 465


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one alert went: the channels it reached and, redacted, why the others were not reached."""

    delivered: tuple[str, ...]
    failed: dict[str, str]


def deliver(
    alert: Alert,
    settings: AlertSettings,
    log: logging.Logger,
    *,
    attempts: int = ATTEMPTS,
    pause: float = PAUSE_SECONDS,
) -> Delivery:
    delivered: list[str] = []
    failed: dict[str, str] = {}
    channels: list[tuple[str, Callable[[], None]]] = []
    if settings.webhook_url:
        channels.append(("webhook", lambda: _post(settings.webhook_url, alert)))
    if settings.email_to:
        channels.append(("e-mail", lambda: _mail(settings, alert)))
    for name, send in channels:
        error = _with_retries(send, attempts, pause)
        if error is None:
            delivered.append(name)
            continue
        failed[name] = redact(error, settings.secrets)
        log.error(f"alert not delivered by {name} after {attempts} attempt(s): {failed[name]} (alert: {alert.title})")
    return Delivery(tuple(delivered), failed)


def _with_retries(send: Callable[[], None], attempts: int, pause: float) -> str | None:
    """None once `send` succeeds, else the last error as text."""
    error = ""
    for attempt in range(attempts):
        try:
            send()
            return None
        except (OSError, smtplib.SMTPException, ValueError) as exc:  # URLError and HTTPError are OSErrors
            error = f"{type(exc).__name__}: {exc}"
        if attempt + 1 < attempts:
            time.sleep(pause * 2**attempt)
    return error


def _post(url: str, alert: Alert) -> None:
    body = json.dumps(alert.payload()).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as reply:  # raises HTTPError from 400 on
        reply.read()


def _mail(settings: AlertSettings, alert: Alert) -> None:
    message = alert.email(settings.email_from, settings.email_to)
    context = ssl.create_default_context()
    if settings.smtp_port == IMPLICIT_TLS_PORT:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS)
    with smtp:
        smtp.ehlo()
        if settings.smtp_port != IMPLICIT_TLS_PORT and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text
