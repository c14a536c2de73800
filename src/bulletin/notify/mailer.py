"""The SMTP client: one connection per run, STARTTLS (certificate verified) before AUTH.

Errors are reduced to a short reason (the exception's class and the server's code), never the
password and never the server's whole answer.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from types import TracebackType

from bulletin.config.notify import NotifySettings
from bulletin.config.secrets import resolve_secret
from bulletin.errors import AuthError, BulletinError

TIMEOUT = 10.0


class MailError(BulletinError):
    """The SMTP server refused a message (others may still go)."""


class MailServerError(MailError):
    """The SMTP server could not be reached, refused the session or dropped it."""


def reason(error: Exception) -> str:
    """A short, secret-free reason for ``error``."""
    code = getattr(error, "smtp_code", None)
    return type(error).__name__ + (f" {code}" if code else "")


class Mailer:
    """An open SMTP session; use as a context manager.

    :raises MailError: on connecting, STARTTLS or AUTH failing (reason only).
    """

    def __init__(self, settings: NotifySettings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = environ
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        s = self.settings
        try:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=TIMEOUT)
            self._smtp = smtp
            smtp.ehlo()
            if s.starttls:
                context = ssl.create_default_context(cafile=s.ca_file or None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.username:
                password = resolve_secret(s.password_env, self.environ, "notify")
                smtp.login(s.username, password.reveal())
        except (OSError, smtplib.SMTPException) as e:
            self.close()
            raise MailServerError(f"SMTP server {s.smtp_host}:{s.smtp_port}: {reason(e)}") from None
        except AuthError as e:  # the password is not set: says which variable, not a value
            self.close()
            raise MailServerError(str(e)) from None
        return self

    def send(self, message: EmailMessage) -> None:
        """Send ``message``.

        :raises MailServerError: the connection broke.
        :raises MailError: the server refused this message.
        """
        assert self._smtp is not None
        try:
            self._smtp.send_message(message)
        except (OSError, smtplib.SMTPServerDisconnected) as e:
            raise MailServerError(f"SMTP send: {reason(e)}") from None
        except smtplib.SMTPException as e:
            raise MailError(f"SMTP send: {reason(e)}") from None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
