"""Talking to the SMTP server named by ``SMTP_URL``.

The URL's format::

    smtp://[user[:password]@]host[:port][?starttls=1]    plain SMTP (port 25), STARTTLS when asked
    smtps://[user[:password]@]host[:port]                SMTP over TLS from the first byte (port 465)

The user and password are percent-encoded in the URL (``%40`` for "@"). ``deliver`` sends one
message to one recipient and says how it went: nothing (accepted), or a ``DeliveryError`` that is
permanent (a 5xx refusal of the recipient, the sender or the content: sending it again would get
the same answer) or transient (no server, a 4xx answer, a timeout, a broken connection, a login
refused: worth another attempt later).
"""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    implicit_tls: bool  # smtps://
    starttls: bool
    username: str | None
    password: str | None

    def __str__(self) -> str:  # for logs and pages: never the password
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{self.host}:{self.port}" + ("?starttls=1" if self.starttls else "")


def parse_url(url: str) -> SmtpSettings:
    """The settings of an ``SMTP_URL``; ValueError (in French) when it is not one."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"SMTP_URL invalide : « smtp://hôte:port » ou « smtps://hôte:port » attendu, pas « {url} »")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    starttls = query.get("starttls", "0").lower() in ("1", "true", "yes", "on")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise ValueError(f"SMTP_URL invalide : port incorrect dans « {url} »") from None
    return SmtpSettings(host=parts.hostname, port=port, implicit_tls=parts.scheme == "smtps",
                        starttls=starttls and parts.scheme == "smtp",
                        username=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password else None)


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(str(text).split())}".strip()


def deliver(settings: SmtpSettings, message: EmailMessage, *, envelope_from: str, recipient: str,
            timeout: float) -> None:
    """Send message to recipient; returns once the server accepted it (its 250 after the data),
    raises DeliveryError otherwise. Nothing after the acceptance can turn it into a failure: the
    closing QUIT is best effort."""
    context = ssl.create_default_context()
    try:
        if settings.implicit_tls:
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"serveur de mail injoignable ({settings}) : {exc}", permanent=False) from None
    try:
        try:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            smtp.send_message(message, from_addr=envelope_from, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise DeliveryError(f"destinataire refusé : {_reply(code, text)}", permanent=500 <= code < 600) from None
        except smtplib.SMTPAuthenticationError as exc:
            # The configuration is wrong, not the mail: another attempt once it is corrected.
            reply = _reply(exc.smtp_code, exc.smtp_error)
            raise DeliveryError(f"identification refusée par le serveur de mail : {reply}", permanent=False) from None
        except smtplib.SMTPHeloError as exc:
            raise DeliveryError(f"le serveur de mail refuse la connexion : {_reply(exc.smtp_code, exc.smtp_error)}",
                                permanent=False) from None
        except smtplib.SMTPResponseException as exc:  # sender or data refused
            raise DeliveryError(f"refusé par le serveur de mail : {_reply(exc.smtp_code, exc.smtp_error)}",
                                permanent=500 <= exc.smtp_code < 600) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"le serveur de mail ne sait pas faire ce que SMTP_URL demande : {exc}",
                                permanent=False) from None
        except (OSError, smtplib.SMTPException) as exc:  # disconnected, timeout, TLS…
            raise DeliveryError(f"échange interrompu avec le serveur de mail : {exc or type(exc).__name__}",
                                permanent=False) from None
    except BaseException:
        smtp.close()
        raise
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
