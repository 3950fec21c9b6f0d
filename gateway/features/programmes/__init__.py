"""Trade-security programmes (SSTL, CSI, Megaport, MRA): programme types and their lanes.

No pipeline handler: a programme is an envelope field (``Header.program``) that every submission carries into
the Cedar request (``programme-members-only``, the programme table of the policy bundle, ``gateway.core.programs``)
and into its ``accepted`` ledger event; those are pure core rules and policy data, not feature hooks.
"""
