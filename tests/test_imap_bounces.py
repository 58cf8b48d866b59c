"""manage.py fetch_bounces --imap against a real IMAP server (Debian's Dovecot, started per test)."""

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from relance import dsn
from relance.gestimum import models as g
from relance.models import DeliveryEvent, Dispatch, SuppressedAddress

from .test_dsn import RECIPIENT, make_dispatch, sample

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "retours", "Rebonds-2026"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not os.path.exists(DOVECOT), reason="Dovecot absent : apt-get install dovecot-imapd"),
]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(root, port):
    if os.geteuid() == 0:
        # Dovecot never runs mail processes as root: the mailbox belongs to nobody.
        owner, identity = "uid=nobody gid=nogroup", ""
        os.chmod(root / "mail", 0o777)
    else:
        me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        owner = f"uid={os.getuid()} gid={os.getgid()}"
        identity = (f"default_internal_user = {me}\ndefault_login_user = {me}\n"
                    f"default_internal_group = {group}\n")
    return f"""{identity}base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = {owner} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@pytest.fixture
def imap_server():
    # Not pytest's tmp_path: Dovecot's auth process (user dovecot) must reach the users file,
    # and its UNIX sockets under base_dir want a short path (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="er-imap-", dir="/tmp"))
    root.chmod(0o755)
    for name in ("run", "state", "mail"):
        (root / name).mkdir()
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = _free_port()
    (root / "dovecot.conf").write_text(_config(root, port))
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"Dovecot ne démarre pas : {process.stderr.read().decode()}")
                time.sleep(0.05)
        yield f"imap://{USER}:{PASSWORD}@127.0.0.1:{port}/INBOX", port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)


def deliver(port, *messages):
    """Put messages in the mailbox the way a mail server would: over IMAP, unread."""
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(USER, PASSWORD)
    for raw in messages:
        client.append("INBOX", None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    client.logout()


def mailbox_state(port):
    """(number of messages, number of unread) in INBOX."""
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(USER, PASSWORD)
    _, count = client.select("INBOX")
    _, unseen = client.search(None, "UNSEEN")
    client.logout()
    return int(count[0]), len(unseen[0].split())


def test_fetch_bounces_reads_an_imap_mailbox_marks_reports_read_and_applies_them_once(
        customer, gestimum, smtp_server, imap_server, capsys):
    url, port = imap_server
    dispatch = make_dispatch(customer)
    deliver(port, sample("postfix-user-unknown.eml", verp=dsn.verp_address(dispatch.pk)),
            b"From: collegue@dupont.example\nSubject: Bonjour\n\nPas un avis de non-remise.\n")

    call_command("fetch_bounces", "--imap", url)

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED
    [event] = DeliveryEvent.objects.filter(dispatch=dispatch)
    assert (event.kind, event.bounce_type, event.provider) == ("bounced", "hard", "dsn")
    assert SuppressedAddress.objects.filter(customer=customer, address=RECIPIENT).exists()
    [notice] = smtp_server.messages
    assert "FA000123" in notice.message["Subject"]
    assert len(gestimum.rows(g.Action)) == 1
    assert "Événements appliqués : 1" in capsys.readouterr().out
    assert mailbox_state(port) == (2, 0)  # read, not deleted

    call_command("fetch_bounces", "--imap", url)  # nothing unread: nothing applied again
    assert "Événements appliqués : 0" in capsys.readouterr().out
    call_command("fetch_bounces", "--imap", url, "--delete")
    assert mailbox_state(port) == (0, 0)
    assert DeliveryEvent.objects.count() == 1 and len(smtp_server.messages) == 1


def test_wrong_imap_credentials_or_folder_say_so_in_french(customer, imap_server):
    url, port = imap_server

    with pytest.raises(CommandError, match="Connexion IMAP impossible"):
        call_command("fetch_bounces", "--imap", url.replace(PASSWORD, "mauvais"))
    with pytest.raises(CommandError, match="Dossier IMAP introuvable : Rebonds"):
        call_command("fetch_bounces", "--imap", url.replace("/INBOX", "/Rebonds"))
