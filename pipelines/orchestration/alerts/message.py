"""One alert, as a webhook's JSON and as an e-mail: the same words in both."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum

# How many codes an alert names; the count is always exact.
LISTED_CODES = 10


class AlertKind(StrEnum):
    RUN_FAILED = "run_failed"
    CHECK_FAILED = "check_failed"
    CHECK_RECOVERED = "check_recovered"
    TICK_FAILED = "tick_failed"
    TICK_RECOVERED = "tick_recovered"


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    title: str  # one line: the e-mail's subject, the webhook text's first line
    details: str = ""
    asset: str | None = None
    codes: tuple[str, ...] = ()
    run_id: str | None = None
    link: str | None = None

    def text(self) -> str:
        """What Slack and Mattermost show, and the e-mail's body."""
        lines = [self.title]
        if self.details:
            lines.append(self.details)
        if self.link:
            lines.append(self.link)
        return "\n".join(lines)

    def payload(self) -> dict[str, object]:
        """The webhook's JSON: `text` for chat tools, the rest for anything that files alerts."""
        return {
            "text": self.text(),
            "kind": self.kind.value,
            "asset": self.asset,
            "codes": list(self.codes),
            "run_id": self.run_id,
            "link": self.link,
        }

    def email(self, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[shortinterest] {self.title}"
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message.set_content(self.text())
        return message


def listed(codes: list[str] | tuple[str, ...]) -> str:
    """`3 code(s): A, B, C`, or the first LISTED_CODES and how many more."""
    shown = ", ".join(codes[:LISTED_CODES])
    more = f" and {len(codes) - LISTED_CODES} more" if len(codes) > LISTED_CODES else ""
    return f"{len(codes)} code(s): {shown}{more}"
