"""Every PAS request example in the IG packages (2.0.1 and 2.2.1) translates to a clean 278 and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from x12 import (
    ControlNumbers,
    authorization_from_bundle,
    bundle_to_278_request,
    inquiry_authorization,
    inquiry_bundle_to_278_request,
    inquiry_response_278_to_bundle,
    parse_interchange,
    read_authorization,
    response_278_to_bundle,
    simulate_payer_response,
    validate_278,
)

pytestmark = pytest.mark.igs


def test_request_examples_round_trip(
    ig_request_bundles: list[tuple[str, str, dict[str, Any]]], now: datetime
) -> None:
    translated = 0
    for version, name, bundle in ig_request_bundles:
        inquiry = "Inquiry" in name
        to_278 = inquiry_bundle_to_278_request if inquiry else bundle_to_278_request
        text = to_278(bundle, control=ControlNumbers(5, 5, 1), now=now)
        assert validate_278(text) == [], (version, name)
        tx = parse_interchange(text).transactions[0]
        content = inquiry_authorization(bundle) if inquiry else authorization_from_bundle(bundle)
        assert read_authorization(tx.segments, tx.implementation) == content, (version, name)
        # The request's items all come back from the simulated payer as decisions or errors.
        response = simulate_payer_response(text, now=now)
        assert validate_278(response) == [], (version, name)
        back = inquiry_response_278_to_bundle if inquiry else response_278_to_bundle
        out = back(response, bundle, now=now, pas_version=version)
        claim_response = out["entry"][0]["resource"]
        assert claim_response["resourceType"] == "ClaimResponse"
        claim = bundle["entry"][0]["resource"]
        assert len(claim_response.get("item", [])) == len(claim["item"]), (version, name)
        assert claim_response["request"]["reference"] == f"Claim/{claim['id']}"
        translated += 1
    assert translated >= 10


def test_referral_example_carries_the_pas_elements(
    ig_request_bundles: list[tuple[str, str, dict[str, Any]]], now: datetime
) -> None:
    bundle = next(
        b
        for v, n, b in ig_request_bundles
        if v == "2.2.1" and n == "Bundle-ReferralAuthorizationBundleExample.json"
    )
    text = bundle_to_278_request(bundle, control=ControlNumbers(1, 1, 1), now=now)
    lines = text.splitlines()
    assert "ISA*00*          *00*          *ZZ*PROVIDERID     *ZZ*PAYERID        *" in lines[0]
    assert lines[1].startswith("GS*HI*PROVIDERAPP*PAYERAPP*")
    assert "BHT*0007*13*A12345*20050502*1101~" in lines
    assert "TRN*1*111099*9012345678*223412~" in lines
    assert "UM*SC*I*3*11:B**U~" in lines
    assert "HI*ABK:G894:D8:20210510~" in lines
    assert "REF*BB*1122445~" in lines and "REF*NT*9988311~" in lines
    assert any(line.startswith("PWK*PY*EL***AC*111222*") for line in lines)
    assert "INS*Y*18******RU~" in lines
