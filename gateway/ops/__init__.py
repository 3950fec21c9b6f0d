"""Operations: ledger service, checkpoints and witnessing, metrics export, readiness, policy and trust admin."""
