"""Manifest entries for the verifiable audit log and record-keeping: RFC 9162, C2SP signed notes and
checkpoints, the EU AI Act, GDPR."""

from __future__ import annotations

from conformance.spec import RFC, Requirement

GOVERNANCE: dict[str, Requirement] = {
    "euaiact:tamper-evident-logs": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj#art_12",
        "High-risk AI systems shall technically allow for the automatic recording of events (logs)",
        "Audit records form a SHA-256 hash chain; altering a stored record is detected at that record.",
    ),
    "rfc9162:merkle-tree-hash": Requirement(
        RFC.format(9162, "2.1.1"),
        "MTH({d(0)}) = HASH(0x00 || d(0)) ... MTH(D_n) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))",
        "Every audit record is a leaf (HASH(0x00 || RFC 8785 record)); roots match the CT reference vectors.",
    ),
    "rfc9162:inclusion-proof": Requirement(
        RFC.format(9162, "2.1.3"),
        "The inclusion proof ... PATH(m, D_n) ... verification (2.1.3.2) ... fail if ... sn is not 0",
        "authz audit prove and every exported record carry PATH(m, D_n); verification follows 2.1.3.2.",
    ),
    "rfc9162:consistency-proof": Requirement(
        RFC.format(9162, "2.1.4"),
        "PROOF(m, D_n) = SUBPROOF(m, D_n, true) ... verification (2.1.4.2)",
        "Checkpoints are only signed after a consistency proof from the previous one verifies; exports carry one.",
    ),
    "c2sp:signed-note-ed25519": Requirement(
        "https://c2sp.org/signed-note",
        "key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4] ... signature line: em dash, name, base64",
        "Checkpoints are Ed25519 signed notes; the golang sumdb example note verifies with our code.",
    ),
    "c2sp:signed-note-ignore-unknown": Requirement(
        "https://c2sp.org/signed-note",
        "Verifiers MUST ignore signatures from unknown keys",
        "open_note skips signature lines of keys it was not given and needs one trusted signature.",
    ),
    "c2sp:tlog-checkpoint-consistent": Requirement(
        "https://c2sp.org/tlog-checkpoint",
        "A log MUST NOT sign any checkpoint which is inconsistent with any checkpoint it previously signed",
        "The checkpointer proves consistency from the largest signed checkpoint (database or directory) first.",
    ),
    "euaiact:regulator-export": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj#art_21",
        "Upon a reasoned request by a competent authority, providers shall also give ... access to the "
        "automatically generated logs of the high-risk AI system referred to in Article 12(1)",
        "authz audit export writes a signed bundle (records, range proof, checkpoint, consistency proof, "
        "schema, dictionary, standalone verifier) that verifies offline.",
    ),
    "euaiact:retention-minimum": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj#art_19",
        "The logs ... shall be kept for a period appropriate to the intended purpose ... of at least six months",
        "authz audit purge refuses anything younger than AUTHZ_AUDIT_RETENTION_DAYS (183); purged records keep "
        "their leaf hashes so proofs still verify.",
    ),
    "euaiact:verifiable-logs": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj#art_12",
        "High-risk AI systems shall technically allow for the automatic recording of events (logs)",
        "Tampering, deletion, truncation or a full rewrite is found against checkpoints held outside the database.",
    ),
    "gdpr:art17-erasure": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2016/679/oj#art_17",
        "the right to obtain ... the erasure of personal data ... 3. ... not ... (b) legal obligation (e) legal claims",
        "Erasure revokes grants, deletes account and profile, destroys the key; audit stays pseudonymous.",
    ),
    "gdpr:art20-export": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2016/679/oj#art_20",
        "the right to receive the personal data ... in a structured, commonly used and machine-readable format",
        "One JSON document (with a $schema): account, profile, consents, delegations, agents, activity records.",
    ),
    "mcp:url-elicitation-required": Requirement(
        "https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation",
        "URLElicitationRequiredError (-32042) ... data.elicitations: URL mode elicitations with elicitationId ... "
        "the server MUST NOT return this error except when URL mode elicitation is required",
        "A gated tool call without an unused approval gets -32042 with one url-mode elicitation (the approval page); "
        "an approved, rejected or ungated call never does.",
    ),
    "euaiact:art14-human-approval": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj#art_14",
        "natural persons ... to decide, in any particular situation, not to use the high-risk AI system or to "
        "otherwise disregard, override or reverse the output",
        "A person approves or rejects each gated call on a signed-in, CSRF-protected page; an approval lets exactly "
        "one call with those arguments through; approvals, rejections, overrides and expiries are audit records.",
    ),
    "euaiact:art14-stop": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj#art_14",
        "to intervene in the operation of the high-risk AI system or interrupt the system through a 'stop' button",
        "Suspending an agent kills its live tokens; its agent.suspended record carries the Art. 14(4)(e) basis.",
    ),
    "euaiact:art73-incident-clock": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj#art_73",
        "not later than 15 days after ... becomes aware of the serious incident ... not later than two days "
        "(widespread infringement, Art. 3(49)(b)) ... not later than 10 days (death of a person)",
        "Incident records carry aware_at and a deadline of 15, 10 or 2 days by kind; open/update/close are audited.",
    ),
    "euaiact:agent-record": Requirement(
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj#art_26",
        "Deployers ... shall keep the logs automatically generated by that high-risk AI system (Art. 26(6)); "
        "high-risk areas listed in Annex III",
        "Each agent can carry its risk level (an Annex III area when high), intended purpose, provider and "
        "deployer; every change is an audit record.",
    ),
}
