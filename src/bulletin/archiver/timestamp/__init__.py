"""RFC 3161 trusted time stamps: proof from an outside time-stamp authority (TSA) that a
ledger checkpoint or a production's manifest existed at a given time.

:mod:`.token` builds the request and checks a token; :mod:`.client` asks the configured
authorities (``[timestamp]``); :mod:`.checkpoints` stamps the ledger's checkpoints and keeps
the tokens in the WORM store beside them.
"""
