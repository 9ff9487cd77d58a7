from proto_client.pb import qot_common_pb2 as _qot_common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GroupType_Unknown: _ClassVar[GroupType]
    GroupType_Custom: _ClassVar[GroupType]
    GroupType_System: _ClassVar[GroupType]
    GroupType_All: _ClassVar[GroupType]
GroupType_Unknown: GroupType
GroupType_Custom: GroupType
GroupType_System: GroupType
GroupType_All: GroupType

class C2S(_message.Message):
    __slots__ = ("groupType", "header")
    GROUPTYPE_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    groupType: int
    header: _qot_common_pb2.QotHeader
    def __init__(self, groupType: _Optional[int] = ..., header: _Optional[_Union[_qot_common_pb2.QotHeader, _Mapping]] = ...) -> None: ...

class GroupData(_message.Message):
    __slots__ = ("groupName", "groupType")
    GROUPNAME_FIELD_NUMBER: _ClassVar[int]
    GROUPTYPE_FIELD_NUMBER: _ClassVar[int]
    groupName: str
    groupType: int
    def __init__(self, groupName: _Optional[str] = ..., groupType: _Optional[int] = ...) -> None: ...

class S2C(_message.Message):
    __slots__ = ("groupList",)
    GROUPLIST_FIELD_NUMBER: _ClassVar[int]
    groupList: _containers.RepeatedCompositeFieldContainer[GroupData]
    def __init__(self, groupList: _Optional[_Iterable[_Union[GroupData, _Mapping]]] = ...) -> None: ...

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
