from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GtwEvent(_message.Message):
    __slots__ = ("eventType", "desc")
    EVENTTYPE_FIELD_NUMBER: _ClassVar[int]
    DESC_FIELD_NUMBER: _ClassVar[int]
    eventType: int
    desc: str
    def __init__(self, eventType: _Optional[int] = ..., desc: _Optional[str] = ...) -> None: ...

class ConnectStatus(_message.Message):
    __slots__ = ("qotLogined", "trdLogined")
    QOTLOGINED_FIELD_NUMBER: _ClassVar[int]
    TRDLOGINED_FIELD_NUMBER: _ClassVar[int]
    qotLogined: bool
    trdLogined: bool
    def __init__(self, qotLogined: bool = ..., trdLogined: bool = ...) -> None: ...

class S2C(_message.Message):
    __slots__ = ("type", "event", "connectStatus")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CONNECTSTATUS_FIELD_NUMBER: _ClassVar[int]
    type: int
    event: GtwEvent
    connectStatus: ConnectStatus
    def __init__(self, type: _Optional[int] = ..., event: _Optional[_Union[GtwEvent, _Mapping]] = ..., connectStatus: _Optional[_Union[ConnectStatus, _Mapping]] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("retType", "retMsg", "errCode", "s2c")
    RETTYPE_FIELD_NUMBER: _ClassVar[int]
    RETMSG_FIELD_NUMBER: _ClassVar[int]
    ERRCODE_FIELD_NUMBER: _ClassVar[int]
    S2C_FIELD_NUMBER: _ClassVar[int]
    retType: int
    retMsg: str
    errCode: int
    s2c: S2C
    def __init__(self, retType: _Optional[int] = ..., retMsg: _Optional[str] = ..., errCode: _Optional[int] = ..., s2c: _Optional[_Union[S2C, _Mapping]] = ...) -> None: ...
