from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class RetType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RetType_Succeed: _ClassVar[RetType]
    RetType_Failed: _ClassVar[RetType]
    RetType_TimeOut: _ClassVar[RetType]
    RetType_DisConnect: _ClassVar[RetType]
    RetType_Unknown: _ClassVar[RetType]
    RetType_Invalid: _ClassVar[RetType]

class PacketEncAlgo(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PacketEncAlgo_FTAES_ECB: _ClassVar[PacketEncAlgo]
    PacketEncAlgo_None: _ClassVar[PacketEncAlgo]
    PacketEncAlgo_AES_ECB: _ClassVar[PacketEncAlgo]
    PacketEncAlgo_AES_CBC: _ClassVar[PacketEncAlgo]

class ProtoFmt(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ProtoFmt_Protobuf: _ClassVar[ProtoFmt]
    ProtoFmt_Json: _ClassVar[ProtoFmt]
RetType_Succeed: RetType
RetType_Failed: RetType
RetType_TimeOut: RetType
RetType_DisConnect: RetType
RetType_Unknown: RetType
RetType_Invalid: RetType
PacketEncAlgo_FTAES_ECB: PacketEncAlgo
PacketEncAlgo_None: PacketEncAlgo
PacketEncAlgo_AES_ECB: PacketEncAlgo
PacketEncAlgo_AES_CBC: PacketEncAlgo
ProtoFmt_Protobuf: ProtoFmt
ProtoFmt_Json: ProtoFmt
