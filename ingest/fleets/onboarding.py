"""Onboarding a fleet: the consent link, and the OAuth callback that registers it for its backfill.

The fleet becomes `consented` here and nowhere else; queueing its backfill is the caller's (the
OAuth callback queues one work item, `ingest.runtime.pipeline`), so this module starts no pull.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from common import names
from common.errors import ConfigError, ConsentRefused
from common.states import FleetStatus
from connectors.oauth import FleetCredentials, StateSigner
from ingest.wiring.clock import Clock
from ingest.wiring.keys import state_key
from ingest.wiring.settings import Settings
from ingest.wiring.tsps import TspEndpoint, endpoint_of, oauth_client
from ingest.wiring.vaults import FleetVaults
from partitions.control_records import ControlMirror

log = logging.getLogger("fleetlake.onboarding")


class Onboarding:
    def __init__(self, settings: Settings, control: ControlMirror, vaults: FleetVaults,
                 endpoints: dict[str, TspEndpoint], clock: Clock) -> None:
        self.settings = settings
        self.vaults = vaults
        self.control = control
        self.endpoints = endpoints
        self.clock = clock

    def consent_url(self, tsp: str, fleet_id: str, relink: bool = False) -> str:
        """A consent link for `fleet_id`; for a fleet already connected only when `relink` is asked."""
        names.fleet_id(fleet_id)
        ep = endpoint_of(self.endpoints, tsp)
        self._refuse_unless_relink(tsp, fleet_id, relink)
        with oauth_client(ep, self.settings) as client:
            return client.consent_url(StateSigner(state_key(self.settings)).make(tsp, fleet_id, relink=relink))

    def _refuse_unless_relink(self, tsp: str, fleet_id: str, relink: bool) -> None:
        # A revoked fleet needs a new consent, so it takes one without asking; any other known
        # fleet has live tokens that a consent would replace, which only an operator may ask for.
        fleet = self.control.manifest.fleet(fleet_id)
        if fleet is not None and fleet.status is not FleetStatus.REVOKED and not relink:
            raise ConsentRefused(tsp, f"fleet {fleet_id} is already connected ({fleet.status.value} on {fleet.tsp}); "
                                      "a re-link must be asked for (`fleetlake connect --relink`, or relink=true)")

    def complete_consent(self, tsp: str, code: str, state: str) -> str:
        """Exchange the code, store the tokens encrypted, register the fleet for backfill. Returns its id.

        The state is used up before the code is exchanged, so two racing callbacks with one state
        cannot both get through; a failed exchange then needs a new consent link.
        """
        ep = endpoint_of(self.endpoints, tsp)
        consent = StateSigner(state_key(self.settings)).verify(state, tsp)
        fleet_id = consent.fleet_id
        if not fleet_id:
            raise ConfigError("state", "this consent was started without a fleet id")
        expires = datetime.fromtimestamp(consent.expires_at, timezone.utc)
        if not self.control.use_consent_nonce(consent.nonce, tsp, fleet_id, expires):
            # Logged without the state: it is a credential until it expires.
            log.warning("refused a consent state used before (fleet %s, %s): a replayed callback", fleet_id, tsp)
            raise ConsentRefused(tsp, "this consent link was used already; start the consent again")
        self._refuse_unless_relink(tsp, fleet_id, consent.relink)
        with oauth_client(ep, self.settings) as client:
            FleetCredentials.connect(fleet_id, client, self.vaults.vault_for(fleet_id, create=True), self.control,
                                     code)
        now = datetime.fromtimestamp(self.clock.now_ms() / 1000, timezone.utc)
        months = self.settings.history_months
        y, m = divmod(now.year * 12 + now.month - 1 - months, 12)
        self.control.set_fleet(fleet_id, tsp, FleetStatus.CONSENTED, consent_at=now,
                               history_start=datetime(y, m + 1, 1, tzinfo=timezone.utc))
        log.info("fleet %s consented on %s; backfill from %04d-%02d", fleet_id, tsp, y, m + 1)
        return fleet_id
