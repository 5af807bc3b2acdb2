"""Read Fabric's MSP folder layout into FabricMSPConfig and a local signing identity.

    <msp>/cacerts/  intermediatecerts/  admincerts/  crls/  tlscacerts/
          tlsintermediatecerts/  signcerts/  keystore/  config.yaml

The crypto material generator writes this layout; nodes and tools read it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from common.crypto import PrivateKey
from common.errors import ConfigError, MalformedIdentity, MalformedKey
from common.msp.identity import Identity, SigningIdentity
from protos.msp import msp_config_pb2

NODE_OU_KEYS = {
    "ClientOUIdentifier": "client_ou_identifier",
    "PeerOUIdentifier": "peer_ou_identifier",
    "AdminOUIdentifier": "admin_ou_identifier",
    "OrdererOUIdentifier": "orderer_ou_identifier",
}


def load_msp_config(path: Path, *, mspid: str) -> msp_config_pb2.FabricMSPConfig:
    """Build the verifying FabricMSPConfig of an MSP folder (no signing identity).

    Raises:
        ConfigError: no CA certificates, a non-PEM file, or a bad config.yaml.
    """
    if not path.is_dir():
        raise ConfigError(f"{path}: msp folder does not exist")
    config = msp_config_pb2.FabricMSPConfig(
        name=mspid,
        root_certs=read_pem_files(path / "cacerts"),
        intermediate_certs=read_pem_files(path / "intermediatecerts"),
        admins=read_pem_files(path / "admincerts"),
        revocation_list=read_pem_files(path / "crls"),
        tls_root_certs=read_pem_files(path / "tlscacerts"),
        tls_intermediate_certs=read_pem_files(path / "tlsintermediatecerts"),
        crypto_config=msp_config_pb2.FabricCryptoConfig(
            signature_hash_family="SHA2", identity_identifier_hash_function="SHA256"
        ),
    )
    if not config.root_certs:
        raise ConfigError(f"{path / 'cacerts'}: no CA certificate files")
    _apply_config_yaml(config, path)
    return config


def load_signing_identity(path: Path | str, *, mspid: str) -> SigningIdentity:
    """The identity in signcerts/ with its matching private key from keystore/.

    Raises:
        ConfigError: no certificate, a bad certificate, or no matching key.
    """
    path = Path(path)
    certs = read_pem_files(path / "signcerts")
    if not certs:
        raise ConfigError(f"{path / 'signcerts'}: no certificate file")
    try:
        identity = Identity.from_certificate_pem(mspid=mspid, pem=certs[0])
    except MalformedIdentity as error:
        raise ConfigError(f"{path / 'signcerts'}: {error}") from None
    for key_file in _files(path / "keystore"):
        try:
            key = PrivateKey.from_pem(key_file.read_bytes())
        except MalformedKey:
            continue
        if key.public_key == identity.certificate.public_key:
            return SigningIdentity(identity, key)
    raise ConfigError(
        f"{path / 'keystore'}: no private key matching the certificate in signcerts/"
    )


def read_pem_files(directory: Path) -> list[bytes]:
    """The exact bytes of every file in `directory` (sorted by name); [] if absent.

    Raises:
        ConfigError: a file holds no PEM block.
    """
    contents = []
    for file in _files(directory):
        data = file.read_bytes()
        if b"-----BEGIN" not in data:
            raise ConfigError(f"{file}: not a PEM file")
        contents.append(data)
    return contents


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        entry
        for entry in directory.iterdir()
        if entry.is_file() and not entry.name.startswith(".")
    )


def _apply_config_yaml(config: msp_config_pb2.FabricMSPConfig, path: Path) -> None:
    """Add NodeOUs and OrganizationalUnitIdentifiers from config.yaml, if present."""
    file = path / "config.yaml"
    if not file.is_file():
        return
    document = _load_yaml(file)
    identifiers = document.get("OrganizationalUnitIdentifiers") or []
    if not isinstance(identifiers, list):
        raise ConfigError(f"{file}: OrganizationalUnitIdentifiers must be a list")
    for index, item in enumerate(identifiers):
        key = f"OrganizationalUnitIdentifiers[{index}]"
        config.organizational_unit_identifiers.append(
            _ou_identifier(path, file, key, item)
        )
    node_ous = document.get("NodeOUs")
    if node_ous is None:
        return
    if not isinstance(node_ous, dict):
        raise ConfigError(f"{file}: NodeOUs must be a mapping")
    if node_ous.get("Enable") is not True:
        return
    config.fabric_node_ous.enable = True
    for yaml_key, field in NODE_OU_KEYS.items():
        if node_ous.get(yaml_key) is not None:
            identifier = _ou_identifier(
                path, file, f"NodeOUs.{yaml_key}", node_ous[yaml_key]
            )
            getattr(config.fabric_node_ous, field).CopyFrom(identifier)


def _load_yaml(file: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: not valid YAML: {error}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    return document


def _ou_identifier(
    path: Path, file: Path, key: str, item: object
) -> msp_config_pb2.FabricOUIdentifier:
    if not isinstance(item, dict):
        raise ConfigError(f"{file}: {key} must be a mapping")
    ou = item.get("OrganizationalUnitIdentifier")
    if not isinstance(ou, str) or not ou:
        raise ConfigError(
            f"{file}: {key}.OrganizationalUnitIdentifier must be a string"
        )
    identifier = msp_config_pb2.FabricOUIdentifier(organizational_unit_identifier=ou)
    certificate = item.get("Certificate")
    if certificate:
        certificate_file = path / str(certificate)
        if not certificate_file.is_file():
            raise ConfigError(f"{file}: {key}.Certificate: no file {certificate_file}")
        identifier.certificate = certificate_file.read_bytes()
    return identifier
