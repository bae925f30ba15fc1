"""The dashboard (``f8a-jobs-worker ui``): a client of the message contract, server-rendered."""
