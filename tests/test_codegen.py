"""The committed protobuf modules must be exactly what protoc makes of the committed .proto files."""

from __future__ import annotations

from pathlib import Path

from proto_client import codegen


def test_generated_modules_are_current(tmp_path: Path) -> None:
    generated = codegen.generate(tmp_path)
    assert {p.name for p in generated} >= {
        "common_pb2.py",
        "qot_common_pb2.py",
        "init_connect_pb2.py",
        "keep_alive_pb2.py",
        "get_global_state_pb2.py",
        "qot_get_short_interest_pb2.py",
        "qot_get_user_security_group_pb2.py",
        "qot_get_user_security_pb2.py",
        "qot_get_plate_security_pb2.py",
        "qot_get_static_info_pb2.py",
    }
    stale = [p.name for p in generated if (codegen.PB_DIR / p.name).read_bytes() != p.read_bytes()]
    assert not stale, f"regenerate with `python -m proto_client.codegen`: stale {stale}"


def test_wire_field_numbers_match_the_spec() -> None:
    from proto_client.pb import qot_get_short_interest_pb2 as pb

    us = {f.name: (f.number, f.type) for f in pb.UsShortInterestItem.DESCRIPTOR.fields}
    hk = {f.name: (f.number, f.type) for f in pb.HkShortInterestItem.DESCRIPTOR.fields}
    fd = pb.UsShortInterestItem.DESCRIPTOR.fields_by_name["sharesShort"]
    assert us["sharesShort"] == (3, fd.TYPE_UINT64)
    assert us["avgDailyShareVolume"] == (5, fd.TYPE_UINT64)
    assert us["timestamp"] == (1, fd.TYPE_INT64)
    assert hk["aggregatedShort"] == (5, fd.TYPE_UINT64)
    assert hk["aggregatedShortRatio"] == (6, fd.TYPE_DOUBLE)
    s2c = {f.name: f.number for f in pb.S2C.DESCRIPTOR.fields}
    assert s2c == {"usItemList": 1, "hkItemList": 2, "nextKey": 3}
    c2s = {f.name: f.number for f in pb.C2S.DESCRIPTOR.fields}
    assert c2s == {"security": 1, "nextKey": 2, "num": 3}


def test_encoding_is_byte_compatible_with_the_official_client() -> None:
    """The same message built with futu-api's own pb modules encodes to the same bytes."""
    import futu  # noqa: F401  (puts futu's pb folder on sys.path)
    from futu.common.pb import Qot_GetShortInterest_pb2 as theirs

    from proto_client.pb import qot_get_short_interest_pb2 as ours

    def fill(msg):  # type: ignore[no-untyped-def]
        msg.c2s.security.market = 1
        msg.c2s.security.code = "00700"
        msg.c2s.nextKey = "1772121600"
        msg.c2s.num = 50
        return msg.SerializeToString()

    assert fill(ours.Request()) == fill(theirs.Request())

    rsp = theirs.Response(retType=0)
    item = rsp.s2c.usItemList.add()
    item.timestamp, item.timestampStr, item.sharesShort = 1777435200, "2026-04-29", 5_000_000_000
    item.shortPercent, item.avgDailyShareVolume = 0.75, 3_000_000_000
    rsp.s2c.nextKey = "-1"
    parsed = ours.Response.FromString(rsp.SerializeToString())
    assert parsed.s2c.usItemList[0].sharesShort == 5_000_000_000
    assert parsed.s2c.nextKey == "-1"
