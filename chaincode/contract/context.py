"""The transaction context a contract receives: the stub and who is calling.

`ClientIdentity` reads the creator of the proposal: its MSP id, an id string built from
the certificate's subject and issuer, and the attributes Fabric CA writes into
certificates (extension 1.2.3.4.5.6.7.8.1, JSON `{"attrs": {...}}`).
"""

from __future__ import annotations

import functools

from chaincode.errors import ChaincodeError
from chaincode.shim.stub import ChaincodeStub
from common.crypto import Certificate, load_certificate
from common.protoutil import SerializedIdentity

STATUS_FORBIDDEN = 403


class ClientIdentity:
    """The identity that signed the proposal (an X.509 MSP identity).

    Raises (on construction):
        MalformedCertificate: the creator's certificate or its attributes do not parse.
    """

    def __init__(self, creator: SerializedIdentity) -> None:
        self._creator = creator
        self._certificate = load_certificate(creator.id_bytes)
        self._attributes = self._certificate.attributes

    def get_id(self) -> str:
        """`x509::<subject DN>::<issuer DN>`, each DN most specific first ("CN=…,OU=…,O=…").

        Unique within the MSP, and unchanged when the certificate is renewed.
        """
        certificate = self._certificate
        return f"x509::{certificate.subject_string()}::{certificate.issuer_string()}"

    def get_mspid(self) -> str:
        """The MSP id of the creator."""
        return self._creator.mspid

    def get_id_bytes(self) -> bytes:
        """The creator's certificate exactly as sent (PEM)."""
        return self._creator.id_bytes

    def get_x509_certificate(self) -> Certificate:
        """The creator's parsed certificate."""
        return self._certificate

    def get_attribute_value(self, name: str) -> str | None:
        """The value of a Fabric CA attribute of the certificate; None when absent."""
        return self._attributes.get(name)

    def assert_attribute_value(self, name: str, value: str) -> None:
        """Fail the transaction unless the creator has attribute `name` equal to `value`.

        Raises:
            ChaincodeError: (status 403) the attribute is absent or has another value.
        """
        actual = self.get_attribute_value(name)
        if actual is None:
            raise ChaincodeError(
                f"attribute {name!r} was not found in the client's certificate",
                status=STATUS_FORBIDDEN,
            )
        if actual != value:
            raise ChaincodeError(
                f"attribute {name!r} equals {actual!r}, not {value!r}",
                status=STATUS_FORBIDDEN,
            )


class Context:
    """What a transaction function gets as its first argument.

    Subclass it (and override `Contract.create_context`) to carry more per-transaction
    state; a new context is made for every invocation.
    """

    def __init__(self, stub: ChaincodeStub) -> None:
        self.stub = stub

    @functools.cached_property
    def client_identity(self) -> ClientIdentity:
        """The caller, parsed on first use.

        Raises:
            ChaincodeSdkError: the invocation carries no signed proposal.
            MalformedCertificate: the creator's certificate does not parse.
        """
        return ClientIdentity(self.stub.get_creator())
