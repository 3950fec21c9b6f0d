"""SOAP adapter: WSDL (document/literal, SOAP 1.1 and 1.2), WS-Security 1.1 X.509 signatures, push delivery."""
