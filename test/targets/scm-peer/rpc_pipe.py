"""Connection-oriented DCE/RPC behind an impacket named pipe (C706 chapter 12, MS-RPCE 2.2.2).

impacket's SMB server turns every open of a registered pipe into a TCP connection to a local port
and relays the pipe's reads and writes over it. This module listens on that port and speaks the
PDUs itself: bind / alter_context (NDR32 only, no RPC-level authentication), request with
fragment reassembly, response fragmented to the negotiated size, and faults as Windows sends them.
impacket's own DCERPCServer serves one connection at a time and keeps one binding for all of
them; here every pipe open is an association of its own, served on its own thread, and the
interface sees it open and close (context handle rundown, MS-RPCE 3.3.3.2.1).
"""

import logging
import socketserver
import struct
import threading
import uuid

LOG = logging.getLogger("scm-peer.rpc")

# PDU types (C706 12.6.4.x).
REQUEST, RESPONSE, FAULT = 0, 2, 3
BIND, BIND_ACK, BIND_NAK = 11, 12, 13
ALTER_CONTEXT, ALTER_CONTEXT_RESP, AUTH3, SHUTDOWN, CO_CANCEL, ORPHANED = 14, 15, 16, 17, 18, 19
# pfc_flags.
PFC_FIRST_FRAG, PFC_LAST_FRAG, PFC_DID_NOT_EXECUTE, PFC_OBJECT_UUID = 0x01, 0x02, 0x20, 0x80
# Fault status codes (C706 appendix E, MS-RPCE 2.2.2.11; RPC_X_BAD_STUB_DATA is a Win32 code).
NCA_S_OP_RNG_ERROR = 0x1C010002
NCA_S_UNKNOWN_IF = 0x1C010003
NCA_S_PROTO_ERROR = 0x1C01000B
RPC_X_BAD_STUB_DATA = 0x000006F7
# p_cont_def_result_t and p_provider_reason_t (C706 12.6.3.1).
ACCEPTANCE, PROVIDER_REJECTION = 0, 2
REASON_NOT_SPECIFIED, ABSTRACT_SYNTAX_NOT_SUPPORTED, TRANSFER_SYNTAXES_NOT_SUPPORTED = 0, 1, 2
# p_reject_reason_t of bind_nak.
AUTHENTICATION_TYPE_NOT_RECOGNIZED = 8

NDR32 = (uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le, 2, 0)
HEADER = struct.Struct("<BBBBIHHI")  # rpc_vers, minor, type, flags, drep, frag_len, auth_len, call_id
MAX_FRAG = 4280  # what Windows offers on named pipes
MAX_STUB = 1 << 20  # a reassembled request larger than this is refused


class ProtocolError(Exception):
    """The peer sent bytes that are not a PDU we can answer; the association is dropped."""


class Interface:
    """What an RPC interface implements. `call` returns the response stub or raises RpcFault."""

    uuid = b""  # bytes_le of the interface UUID
    version = (0, 0)
    secondary_address = ""

    def open_association(self, assoc_id):
        pass

    def close_association(self, assoc_id):
        pass

    def call(self, assoc_id, opnum, stub):
        raise RpcFault(NCA_S_OP_RNG_ERROR)


class RpcFault(Exception):
    def __init__(self, status):
        super().__init__("fault 0x%08x" % status)
        self.status = status


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if buf:
                raise ProtocolError("connection closed inside a PDU")
            return None
        buf += chunk
    return buf


def _parse_contexts(body):
    """p_cont_list_t: yields (cont_id, abstract (uuid, major, minor), [transfer syntaxes])."""
    if len(body) < 4:
        raise ProtocolError("short p_cont_list")
    count, off, out = body[0], 4, []
    for _ in range(count):
        if len(body) < off + 24:
            raise ProtocolError("short p_cont_elem")
        cont_id, n_transfer = struct.unpack_from("<HB", body, off)
        abstract = (body[off + 4:off + 20],) + struct.unpack_from("<HH", body, off + 20)
        off += 24
        transfers = []
        for _ in range(n_transfer):
            if len(body) < off + 20:
                raise ProtocolError("short transfer syntax")
            transfers.append((body[off:off + 16],) + struct.unpack_from("<HH", body, off + 16))
            off += 20
        out.append((cont_id, abstract, transfers))
    return out


class Association(socketserver.BaseRequestHandler):
    """One pipe open: binds, requests and their responses, until the client closes the pipe."""

    def setup(self):
        self.iface = self.server.interface
        self.assoc_id = self.server.next_assoc_id()
        self.contexts = set()
        self.max_xmit = MAX_FRAG
        self.pending = {}  # call_id -> (cont_id, opnum, stub so far)

    def handle(self):
        self.iface.open_association(self.assoc_id)
        try:
            while True:
                pdu = self.read_pdu()
                if pdu is None:
                    return
                self.dispatch(*pdu)
        except (ProtocolError, OSError) as err:
            LOG.warning("assoc=%d dropped: %s", self.assoc_id, err)
        finally:
            self.iface.close_association(self.assoc_id)

    def read_pdu(self):
        head = _recv_exact(self.request, HEADER.size)
        if head is None:
            return None
        vers, minor, ptype, flags, drep, frag_len, auth_len, call_id = HEADER.unpack(head)
        if vers != 5 or minor > 1 or frag_len < HEADER.size:
            raise ProtocolError("not a connection-oriented DCE/RPC 5.x header")
        if drep & 0xFF != 0x10:
            raise ProtocolError("only little-endian ASCII IEEE data representation is spoken")
        body = _recv_exact(self.request, frag_len - HEADER.size) or b""
        if auth_len:
            body = body[:-(auth_len + 8)]  # drop the auth verifier; binds with auth are refused
        return ptype, flags, call_id, auth_len, body

    def send_pdu(self, ptype, flags, call_id, body):
        head = HEADER.pack(5, 0, ptype, flags, 0x10, HEADER.size + len(body), 0, call_id)
        self.request.sendall(head + body)

    def dispatch(self, ptype, flags, call_id, auth_len, body):
        if ptype in (BIND, ALTER_CONTEXT):
            self.bind(ptype, flags, call_id, auth_len, body)
        elif ptype == REQUEST:
            self.request_fragment(flags, call_id, body)
        elif ptype in (AUTH3, SHUTDOWN, CO_CANCEL, ORPHANED):
            self.pending.pop(call_id, None)
        else:
            raise ProtocolError("unexpected PDU type %d" % ptype)

    def bind(self, ptype, flags, call_id, auth_len, body):
        if len(body) < 8:
            raise ProtocolError("short bind")
        max_xmit, max_recv, group = struct.unpack_from("<HHI", body)
        if auth_len:
            LOG.info("assoc=%d bind with RPC authentication refused (bind_nak)", self.assoc_id)
            self.send_pdu(BIND_NAK, PFC_FIRST_FRAG | PFC_LAST_FRAG, call_id,
                          struct.pack("<HBBB", AUTHENTICATION_TYPE_NOT_RECOGNIZED, 1, 5, 0))
            return
        results = []
        for cont_id, abstract, transfers in _parse_contexts(body[8:]):
            if abstract[0] != self.iface.uuid or abstract[1:] != self.iface.version:
                results.append((PROVIDER_REJECTION, ABSTRACT_SYNTAX_NOT_SUPPORTED, b"\0" * 20))
            elif NDR32 not in transfers:
                results.append((PROVIDER_REJECTION, TRANSFER_SYNTAXES_NOT_SUPPORTED, b"\0" * 20))
            else:
                self.contexts.add(cont_id)
                results.append((ACCEPTANCE, REASON_NOT_SPECIFIED, NDR32[0] + struct.pack("<HH", 2, 0)))
            LOG.info("assoc=%d %s context=%d interface=%s v%d.%d -> %s", self.assoc_id,
                     "bind" if ptype == BIND else "alter_context", cont_id,
                     uuid.UUID(bytes_le=abstract[0]), abstract[1], abstract[2],
                     "accepted" if results[-1][0] == ACCEPTANCE else "rejected (%d)" % results[-1][1])
        if ptype == BIND:
            # The server sends at most what the client can receive, and never more than 4280.
            self.max_xmit = max(HEADER.size + 8 + 16, min(max_recv, MAX_FRAG))
            secondary = self.iface.secondary_address.encode() + b"\0"
        else:
            secondary = b""  # alter_context_resp carries an empty secondary address
        out = struct.pack("<HHI", self.max_xmit, min(max_xmit, MAX_FRAG), group or self.server.group_id)
        out += struct.pack("<H", len(secondary)) + secondary
        out += b"\0" * (-(HEADER.size + len(out)) % 4)
        out += struct.pack("<BBH", len(results), 0, 0)
        for result, reason, transfer in results:
            out += struct.pack("<HH", result, reason) + transfer
        self.send_pdu(BIND_ACK if ptype == BIND else ALTER_CONTEXT_RESP,
                      PFC_FIRST_FRAG | PFC_LAST_FRAG, call_id, out)

    def request_fragment(self, flags, call_id, body):
        if len(body) < 8:
            raise ProtocolError("short request")
        _alloc_hint, cont_id, opnum = struct.unpack_from("<IHH", body)
        stub = body[24:] if flags & PFC_OBJECT_UUID else body[8:]
        if flags & PFC_FIRST_FRAG:
            self.pending[call_id] = (cont_id, opnum, stub)
        elif call_id in self.pending:
            cont_id, opnum, sofar = self.pending[call_id]
            self.pending[call_id] = (cont_id, opnum, sofar + stub)
        else:
            raise ProtocolError("request fragment of an unknown call %d" % call_id)
        if len(self.pending[call_id][2]) > MAX_STUB:
            raise ProtocolError("request larger than %d bytes" % MAX_STUB)
        if not flags & PFC_LAST_FRAG:
            return
        cont_id, opnum, stub = self.pending.pop(call_id)
        if cont_id not in self.contexts:
            self.fault(call_id, cont_id, NCA_S_UNKNOWN_IF)
            return
        try:
            answer = self.iface.call(self.assoc_id, opnum, stub)
        except RpcFault as fault:
            self.fault(call_id, cont_id, fault.status)
            return
        self.respond(call_id, cont_id, answer)

    def respond(self, call_id, cont_id, stub):
        room = self.max_xmit - HEADER.size - 8
        offset = 0
        while True:
            chunk = stub[offset:offset + room]
            flags = (PFC_FIRST_FRAG if offset == 0 else 0)
            if offset + room >= len(stub):
                flags |= PFC_LAST_FRAG
            body = struct.pack("<IHBB", len(stub) - offset, cont_id, 0, 0) + chunk
            self.send_pdu(RESPONSE, flags, call_id, body)
            offset += room
            if flags & PFC_LAST_FRAG:
                return

    def fault(self, call_id, cont_id, status):
        LOG.info("assoc=%d call=%d fault 0x%08x", self.assoc_id, call_id, status)
        flags = PFC_FIRST_FRAG | PFC_LAST_FRAG
        if status in (NCA_S_OP_RNG_ERROR, NCA_S_UNKNOWN_IF):
            flags |= PFC_DID_NOT_EXECUTE
        self.send_pdu(FAULT, flags, call_id, struct.pack("<IHBBII", 0, cont_id, 0, 0, status, 0))


class PipeServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Listens on a loopback port that the SMB server relays one named pipe to."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, interface):
        super().__init__(("127.0.0.1", 0), Association)
        self.interface = interface
        self.group_id = 0x5C3E
        self._lock = threading.Lock()
        self._assoc = 0

    def next_assoc_id(self):
        with self._lock:
            self._assoc += 1
            return self._assoc

    @property
    def port(self):
        return self.server_address[1]

    def serve_in_background(self):
        t = threading.Thread(target=self.serve_forever, name="rpc-pipe", daemon=True)
        t.start()
        return t
