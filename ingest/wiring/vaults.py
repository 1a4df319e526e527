"""Each fleet's vault: its TSP tokens sealed with a data key of its own (crypto-shredding).

The data keys live in the manifest's keyring (`partitions.keyring`, outside DuckDB), wrapped with
FLEETLAKE_TOKEN_KEY, and are mirrored to the store for rebuilds (`partitions.control_records`).
Off-boarding destroys a fleet's key, so no copy of its sealed tokens opens any more.
`migrate_credentials` moves credentials an older fleetlake sealed with the master key alone
under data keys of their own, once, at start-up.
"""

from __future__ import annotations

import logging

from common.errors import AuthError, ConfigError
from connectors.oauth import Vault
from ingest.wiring.settings import Settings
from partitions.control_records import ControlMirror
from partitions.keyring import Keyring

log = logging.getLogger("fleetlake.vaults")


def _opens(vault: Vault, blob: bytes) -> bool:
    try:
        vault.open(blob)
    except AuthError:
        return False
    return True


class FleetVaults:
    def __init__(self, settings: Settings, control: ControlMirror, keyring: Keyring) -> None:
        self.settings = settings
        self.control = control
        self.keyring = keyring

    # Only consent, pulls and off-boarding touch tokens: read-only commands need no key.
    def vault_for(self, fleet_id: str, create: bool = False) -> Vault:
        """The Vault of one fleet: its own data key, unwrapped with FLEETLAKE_TOKEN_KEY.

        `create` (a consent) makes the key when the fleet has none. Otherwise a missing key is an
        error that says how to get it back: a new key could not open the tokens already stored.
        """
        if self.settings.token_key is None:
            raise ConfigError("FLEETLAKE_TOKEN_KEY", "is required (generate one with `fleetlake keygen`)")
        key = self.control.data_key(fleet_id, create=create)
        if key is None:
            raise AuthError("vault", f"fleet {fleet_id} has no data key in {self.keyring.path}: run `fleetlake "
                                     "manifest rebuild` to restore the keys from the store, or connect the fleet "
                                     "again (--relink)")
        return Vault(key, key_name=f"fleet {fleet_id}'s data key")

    def migrate_credentials(self) -> int:
        """Re-seal credentials an older fleetlake sealed with FLEETLAKE_TOKEN_KEY alone under data keys
        of their own; returns how many fleets. Run at start-up (ingest.runtime.app.open_app), before any pull.

        The manifest is then rewritten into a fresh file: re-sealed in place, the old blobs would stay
        in its free blocks, where the master key would open them after an off-boarding. A blob that
        opens with neither key is left as it is and logged (its pulls fail with that reason).
        """
        if self.settings.token_key is None:
            return 0
        manifest = self.control.manifest
        master = Vault(self.settings.token_key.get_secret_value())
        resealed: dict[str, bytes] = {}
        for fleet_id, blob in manifest.all_credentials().items():
            key = self.keyring.data_key(fleet_id)
            if key is not None and _opens(Vault(key), blob):
                continue
            if not _opens(master, blob):
                log.warning("fleet %s: its stored tokens open neither with %s nor with FLEETLAKE_TOKEN_KEY; "
                            "restore the keyring with `fleetlake manifest rebuild` or connect it again", fleet_id,
                            "its data key" if key else "a data key (it has none)")
                continue
            resealed[fleet_id] = self.vault_for(fleet_id, create=True).seal(master.open(blob))
        if not resealed:
            return 0
        manifest.rewrite(resealed)
        for fleet_id in resealed:
            self.control.sync(fleet_id)  # the store's credentials record too, and the new key
        log.info("sealed the credentials of %d fleets with data keys of their own; the manifest was rewritten "
                 "into a fresh file, so no blob sealed with FLEETLAKE_TOKEN_KEY alone stays in it", len(resealed))
        aside = sorted(p.name for p in manifest.path.parent.glob(f"{manifest.path.name}.damaged-*"))
        if aside:
            log.warning("files an earlier `manifest rebuild` kept aside (%s) still hold credentials sealed with "
                        "FLEETLAKE_TOKEN_KEY alone: delete them once they are not needed", ", ".join(aside))
        return len(resealed)
