from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QotMarket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QotMarket_Unknown: _ClassVar[QotMarket]
    QotMarket_HK_Security: _ClassVar[QotMarket]
    QotMarket_HK_Future: _ClassVar[QotMarket]
    QotMarket_US_Security: _ClassVar[QotMarket]
    QotMarket_CNSH_Security: _ClassVar[QotMarket]
    QotMarket_CNSZ_Security: _ClassVar[QotMarket]
    QotMarket_SG_Security: _ClassVar[QotMarket]
    QotMarket_JP_Security: _ClassVar[QotMarket]

class SecurityType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SecurityType_Unknown: _ClassVar[SecurityType]
    SecurityType_Bond: _ClassVar[SecurityType]
    SecurityType_Bwrt: _ClassVar[SecurityType]
    SecurityType_Eqty: _ClassVar[SecurityType]
    SecurityType_Trust: _ClassVar[SecurityType]
    SecurityType_Warrant: _ClassVar[SecurityType]
    SecurityType_Index: _ClassVar[SecurityType]
    SecurityType_Plate: _ClassVar[SecurityType]
    SecurityType_Drvt: _ClassVar[SecurityType]
    SecurityType_PlateSet: _ClassVar[SecurityType]
    SecurityType_Future: _ClassVar[SecurityType]
    SecurityType_Forex: _ClassVar[SecurityType]
    SecurityType_Crypto: _ClassVar[SecurityType]
QotMarket_Unknown: QotMarket
QotMarket_HK_Security: QotMarket
QotMarket_HK_Future: QotMarket
QotMarket_US_Security: QotMarket
QotMarket_CNSH_Security: QotMarket
QotMarket_CNSZ_Security: QotMarket
QotMarket_SG_Security: QotMarket
QotMarket_JP_Security: QotMarket
SecurityType_Unknown: SecurityType
SecurityType_Bond: SecurityType
SecurityType_Bwrt: SecurityType
SecurityType_Eqty: SecurityType
SecurityType_Trust: SecurityType
SecurityType_Warrant: SecurityType
SecurityType_Index: SecurityType
SecurityType_Plate: SecurityType
SecurityType_Drvt: SecurityType
SecurityType_PlateSet: SecurityType
SecurityType_Future: SecurityType
SecurityType_Forex: SecurityType
SecurityType_Crypto: SecurityType

class Security(_message.Message):
    __slots__ = ("market", "code")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    market: int
    code: str
    def __init__(self, market: _Optional[int] = ..., code: _Optional[str] = ...) -> None: ...

class QotHeader(_message.Message):
    __slots__ = ("securityFirm",)
    SECURITYFIRM_FIELD_NUMBER: _ClassVar[int]
    securityFirm: int
    def __init__(self, securityFirm: _Optional[int] = ...) -> None: ...

class SecurityStaticBasic(_message.Message):
    __slots__ = ("security", "id", "lotSize", "secType", "name", "listTime", "delisting", "listTimestamp", "exchType")
    SECURITY_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LOTSIZE_FIELD_NUMBER: _ClassVar[int]
    SECTYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LISTTIME_FIELD_NUMBER: _ClassVar[int]
    DELISTING_FIELD_NUMBER: _ClassVar[int]
    LISTTIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EXCHTYPE_FIELD_NUMBER: _ClassVar[int]
    security: Security
    id: int
    lotSize: int
    secType: int
    name: str
    listTime: str
    delisting: bool
    listTimestamp: float
    exchType: int
    def __init__(self, security: _Optional[_Union[Security, _Mapping]] = ..., id: _Optional[int] = ..., lotSize: _Optional[int] = ..., secType: _Optional[int] = ..., name: _Optional[str] = ..., listTime: _Optional[str] = ..., delisting: bool = ..., listTimestamp: _Optional[float] = ..., exchType: _Optional[int] = ...) -> None: ...

class WarrantStaticExData(_message.Message):
    __slots__ = ("type", "owner")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    type: int
    owner: Security
    def __init__(self, type: _Optional[int] = ..., owner: _Optional[_Union[Security, _Mapping]] = ...) -> None: ...

class OptionStaticExData(_message.Message):
    __slots__ = ("type", "owner", "strikeTime", "strikePrice", "suspend", "market", "strikeTimestamp", "indexOptionType", "expirationCycle", "optionStandardType", "optionSettlementMode")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STRIKETIME_FIELD_NUMBER: _ClassVar[int]
    STRIKEPRICE_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    STRIKETIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    INDEXOPTIONTYPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRATIONCYCLE_FIELD_NUMBER: _ClassVar[int]
    OPTIONSTANDARDTYPE_FIELD_NUMBER: _ClassVar[int]
    OPTIONSETTLEMENTMODE_FIELD_NUMBER: _ClassVar[int]
    type: int
    owner: Security
    strikeTime: str
    strikePrice: float
    suspend: bool
    market: str
    strikeTimestamp: float
    indexOptionType: int
    expirationCycle: int
    optionStandardType: int
    optionSettlementMode: int
    def __init__(self, type: _Optional[int] = ..., owner: _Optional[_Union[Security, _Mapping]] = ..., strikeTime: _Optional[str] = ..., strikePrice: _Optional[float] = ..., suspend: bool = ..., market: _Optional[str] = ..., strikeTimestamp: _Optional[float] = ..., indexOptionType: _Optional[int] = ..., expirationCycle: _Optional[int] = ..., optionStandardType: _Optional[int] = ..., optionSettlementMode: _Optional[int] = ...) -> None: ...

class FutureStaticExData(_message.Message):
    __slots__ = ("lastTradeTime", "lastTradeTimestamp", "isMainContract")
    LASTTRADETIME_FIELD_NUMBER: _ClassVar[int]
    LASTTRADETIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ISMAINCONTRACT_FIELD_NUMBER: _ClassVar[int]
    lastTradeTime: str
    lastTradeTimestamp: float
    isMainContract: bool
    def __init__(self, lastTradeTime: _Optional[str] = ..., lastTradeTimestamp: _Optional[float] = ..., isMainContract: bool = ...) -> None: ...

class SecurityStaticInfo(_message.Message):
    __slots__ = ("basic", "warrantExData", "optionExData", "futureExData")
    BASIC_FIELD_NUMBER: _ClassVar[int]
    WARRANTEXDATA_FIELD_NUMBER: _ClassVar[int]
    OPTIONEXDATA_FIELD_NUMBER: _ClassVar[int]
    FUTUREEXDATA_FIELD_NUMBER: _ClassVar[int]
    basic: SecurityStaticBasic
    warrantExData: WarrantStaticExData
    optionExData: OptionStaticExData
    futureExData: FutureStaticExData
    def __init__(self, basic: _Optional[_Union[SecurityStaticBasic, _Mapping]] = ..., warrantExData: _Optional[_Union[WarrantStaticExData, _Mapping]] = ..., optionExData: _Optional[_Union[OptionStaticExData, _Mapping]] = ..., futureExData: _Optional[_Union[FutureStaticExData, _Mapping]] = ...) -> None: ...
