/**
 * The message codecs by command and direction, for tests that walk every message type (the
 * captured-fixture round trip and the fuzzing properties).
 */
import { Command } from "../../../actors/smb/codec/header.ts";
import * as close from "../../../actors/smb/codec/close.ts";
import * as create from "../../../actors/smb/codec/create.ts";
import * as ioctl from "../../../actors/smb/codec/ioctl.ts";
import * as negotiate from "../../../actors/smb/codec/negotiate.ts";
import * as readWrite from "../../../actors/smb/codec/read-write.ts";
import * as sessionSetup from "../../../actors/smb/codec/session-setup.ts";
import * as treeConnect from "../../../actors/smb/codec/tree-connect.ts";
import * as queryInfo from "../../../actors/smb/codec/query-info.ts";
import * as setInfo from "../../../actors/smb/codec/set-info.ts";
import * as queryDirectory from "../../../actors/smb/codec/query-directory.ts";
import * as logoff from "../../../actors/smb/codec/logoff.ts";
import * as echo from "../../../actors/smb/codec/echo.ts";
import * as flush from "../../../actors/smb/codec/flush.ts";
import * as cancel from "../../../actors/smb/codec/cancel.ts";

/** A decoder of whole messages and the encoder of their bodies. */
export interface CodecPair {
  readonly name: string;
  readonly decode: (message: Buffer) => unknown;
  readonly encode: (value: never) => Buffer;
}

const pair = (name: string, decode: (m: Buffer) => unknown, encode: (v: never) => Buffer): CodecPair => ({
  name,
  decode,
  encode,
});

/** Request and response codecs of each command. */
export const codecs = new Map<number, { request: CodecPair; response?: CodecPair }>([
  [
    Command.NEGOTIATE,
    {
      request: pair("NEGOTIATE request", negotiate.decodeNegotiateRequest, negotiate.encodeNegotiateRequest),
      response: pair(
        "NEGOTIATE response",
        negotiate.decodeNegotiateResponse,
        negotiate.encodeNegotiateResponse,
      ),
    },
  ],
  [
    Command.SESSION_SETUP,
    {
      request: pair(
        "SESSION_SETUP request",
        sessionSetup.decodeSessionSetupRequest,
        sessionSetup.encodeSessionSetupRequest,
      ),
      response: pair(
        "SESSION_SETUP response",
        sessionSetup.decodeSessionSetupResponse,
        sessionSetup.encodeSessionSetupResponse,
      ),
    },
  ],
  [
    Command.TREE_CONNECT,
    {
      request: pair(
        "TREE_CONNECT request",
        treeConnect.decodeTreeConnectRequest,
        treeConnect.encodeTreeConnectRequest,
      ),
      response: pair(
        "TREE_CONNECT response",
        treeConnect.decodeTreeConnectResponse,
        treeConnect.encodeTreeConnectResponse,
      ),
    },
  ],
  [
    Command.TREE_DISCONNECT,
    {
      request: pair(
        "TREE_DISCONNECT request",
        treeConnect.decodeTreeDisconnectRequest,
        treeConnect.encodeTreeDisconnectRequest,
      ),
      response: pair(
        "TREE_DISCONNECT response",
        treeConnect.decodeTreeDisconnectResponse,
        treeConnect.encodeTreeDisconnectResponse,
      ),
    },
  ],
  [
    Command.CREATE,
    {
      request: pair("CREATE request", create.decodeCreateRequest, create.encodeCreateRequest),
      response: pair("CREATE response", create.decodeCreateResponse, create.encodeCreateResponse),
    },
  ],
  [
    Command.CLOSE,
    {
      request: pair("CLOSE request", close.decodeCloseRequest, close.encodeCloseRequest),
      response: pair("CLOSE response", close.decodeCloseResponse, close.encodeCloseResponse),
    },
  ],
  [
    Command.READ,
    {
      request: pair("READ request", readWrite.decodeReadRequest, readWrite.encodeReadRequest),
      response: pair("READ response", readWrite.decodeReadResponse, readWrite.encodeReadResponse),
    },
  ],
  [
    Command.WRITE,
    {
      request: pair("WRITE request", readWrite.decodeWriteRequest, readWrite.encodeWriteRequest),
      response: pair("WRITE response", readWrite.decodeWriteResponse, readWrite.encodeWriteResponse),
    },
  ],
  [
    Command.IOCTL,
    {
      request: pair("IOCTL request", ioctl.decodeIoctlRequest, ioctl.encodeIoctlRequest),
      response: pair("IOCTL response", ioctl.decodeIoctlResponse, ioctl.encodeIoctlResponse),
    },
  ],
  [
    Command.QUERY_INFO,
    {
      request: pair("QUERY_INFO request", queryInfo.decodeQueryInfoRequest, queryInfo.encodeQueryInfoRequest),
      response: pair(
        "QUERY_INFO response",
        queryInfo.decodeQueryInfoResponse,
        queryInfo.encodeQueryInfoResponse,
      ),
    },
  ],
  [
    Command.SET_INFO,
    {
      request: pair("SET_INFO request", setInfo.decodeSetInfoRequest, setInfo.encodeSetInfoRequest),
      response: pair("SET_INFO response", setInfo.decodeSetInfoResponse, setInfo.encodeSetInfoResponse),
    },
  ],
  [
    Command.QUERY_DIRECTORY,
    {
      request: pair(
        "QUERY_DIRECTORY request",
        queryDirectory.decodeQueryDirectoryRequest,
        queryDirectory.encodeQueryDirectoryRequest,
      ),
      response: pair(
        "QUERY_DIRECTORY response",
        queryDirectory.decodeQueryDirectoryResponse,
        queryDirectory.encodeQueryDirectoryResponse,
      ),
    },
  ],
  [
    Command.LOGOFF,
    {
      request: pair("LOGOFF request", logoff.decodeLogoffRequest, logoff.encodeLogoffRequest),
      response: pair("LOGOFF response", logoff.decodeLogoffResponse, logoff.encodeLogoffResponse),
    },
  ],
  [
    Command.ECHO,
    {
      request: pair("ECHO request", echo.decodeEchoRequest, echo.encodeEchoRequest),
      response: pair("ECHO response", echo.decodeEchoResponse, echo.encodeEchoResponse),
    },
  ],
  [
    Command.FLUSH,
    {
      request: pair("FLUSH request", flush.decodeFlushRequest, flush.encodeFlushRequest),
      response: pair("FLUSH response", flush.decodeFlushResponse, flush.encodeFlushResponse),
    },
  ],
  [
    Command.CANCEL,
    { request: pair("CANCEL request", cancel.decodeCancelRequest, cancel.encodeCancelRequest) },
  ],
]);
