"""gRPC adapter (``grpc.aio``): the ``cgw.v1.Exchange`` and ``cgw.v1.Audit`` services over the one pipeline.

A translator only, like ``adapters.rest``: wire -> ``Inbound`` / pipeline calls, results -> wire, errors through
``adapters.status`` (the ``grpc`` column) with a ``google.rpc.ErrorInfo`` detail carrying the stable code.
gRPC and protobuf objects never leave this package (the reference client has its own in ``gateway.client.grpc_client``).
"""
