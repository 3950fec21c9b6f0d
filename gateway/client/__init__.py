"""Reference clients (REST, gRPC) a member or an auditor can use; they import gateway.core only."""
