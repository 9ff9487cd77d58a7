from proto_client.pb import qot_common_pb2 as _qot_common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class C2S(_message.Message):
    __slots__ = ("groupName", "header")
    GROUPNAME_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    groupName: str
    header: _qot_common_pb2.QotHeader
    def __init__(self, groupName: _Optional[str] = ..., header: _Optional[_Union[_qot_common_pb2.QotHeader, _Mapping]] = ...) -> None: ...

class S2C(_message.Message):
    __slots__ = ("staticInfoList",)
    STATICINFOLIST_FIELD_NUMBER: _ClassVar[int]
    staticInfoList: _containers.RepeatedCompositeFieldContainer[_qot_common_pb2.SecurityStaticInfo]
    def __init__(self, staticInfoList: _Optional[_Iterable[_Union[_qot_common_pb2.SecurityStaticInfo, _Mapping]]] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("c2s",)
    C2S_FIELD_NUMBER: _ClassVar[int]
    c2s: C2S
    def __init__(self, c2s: _Optional[_Union[C2S, _Mapping]] = ...) -> None: ...

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
