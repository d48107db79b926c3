"""C2SP signed notes and checkpoints: the golang.org/x/mod/sumdb/note example verifies, ours round-trip,
unknown signatures are ignored, and any change to the text or the key is refused."""

from __future__ import annotations

import pytest

from authz.audit.note import Checkpoint, NoteError, Signer, Verifier, open_note, verify_checkpoint

# The example key and note of golang.org/x/mod/sumdb/note's documentation.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
    + "RZb6KE6RyyBwJnAM=\n"
)


@pytest.mark.requirement("c2sp:signed-note-ed25519")
def test_the_go_sumdb_example_note_verifies() -> None:
    verifier = Verifier.parse(GO_VKEY)
    assert verifier.encode() == GO_VKEY
    assert open_note(GO_NOTE, [verifier]) == (GO_TEXT, [verifier])
    with pytest.raises(NoteError):
        open_note(GO_NOTE.replace("cryptography", "Cryptography"), [verifier])


@pytest.mark.requirement("c2sp:signed-note-ignore-unknown")
def test_unknown_signatures_are_ignored_and_a_note_needs_one_known() -> None:
    ours = Signer("log.example/audit", bytes(range(32)))
    other = Signer("witness.example", bytes(32))
    note = ours.sign(Checkpoint("log.example/audit", 3, bytes(32)).text())
    cosigned = note + other.sign(Checkpoint("log.example/audit", 3, bytes(32)).text()).split("\n\n")[1]
    assert verify_checkpoint(cosigned, [ours.verifier], "log.example/audit").size == 3
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(note, [other.verifier])
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(note, [ours.verifier], "another/log")


def test_checkpoint_text_is_origin_size_root() -> None:
    cp = Checkpoint("log.example/audit", 42, b"\x01" * 32)
    assert cp.text() == "log.example/audit\n42\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
    assert Checkpoint.parse_text(cp.text()) == cp
    with pytest.raises(NoteError):
        Checkpoint.parse_text("log.example/audit\n042\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n")


def test_verifier_keys_with_a_wrong_id_are_refused() -> None:
    with pytest.raises(NoteError, match="id does not match"):
        Verifier.parse(GO_VKEY.replace("c74f20a3", "c74f20a4"))
