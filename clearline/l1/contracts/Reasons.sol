// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// The verdicts of a fraud proof: every verifier returns one of these (0 = not fraud), and the
// Rollup emits it. Stable codes, mirrored by clearline.watchtower.fraud.REASON_NAMES: never
// renumber. One file so the contracts that judge share one list.
uint256 constant REASON_BAD_VERSION = 1;
uint256 constant REASON_BAD_HEADER_VARINT = 2;
uint256 constant REASON_BAD_TXS_PER_ROOT = 3;
uint256 constant REASON_CHUNK_TABLE = 4;
uint256 constant REASON_ROOT_COUNT = 5;
uint256 constant REASON_CHUNK_UNDECODABLE = 10;
uint256 constant REASON_CHUNK_FIELD_RANGE = 11;
uint256 constant REASON_CHUNK_NOT_CANONICAL = 12;
uint256 constant REASON_CHUNK_BAD_FALLBACK = 13;
uint256 constant REASON_QUEUE_OUT_OF_ORDER = 20;
uint256 constant REASON_QUEUE_ITEM_MISMATCH = 21;
uint256 constant REASON_QUEUE_END = 23;
uint256 constant REASON_WRONG_POST_ROOT = 30;
uint256 constant REASON_REJECTED = 31;
uint256 constant REASON_BAD_RECORD = 40;
uint256 constant REASON_RECORD_ORDER = 41;
uint256 constant REASON_MISSING_RECORD = 42;
uint256 constant REASON_RECORD_SUM = 43;
