"""Scope policy: the AS's only caller of the Cedar ``policies`` package, deciding what each issuance may grant."""
