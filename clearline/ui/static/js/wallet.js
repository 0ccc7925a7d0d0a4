// Demo wallet: a secp256k1 key kept in this browser's localStorage; signs clearline's
// EIP-712 typed data with ethers v6. The domain and the struct layouts come from
// GET /api/v1/info (the node's own clearline.core.eip712), so what is signed here is
// byte for byte what the node hashes; an accepted order proves it.
import { Wallet, TypedDataEncoder, getAddress } from "../vendor/ethers.min.js";

const KEY = "clearline.demo.key";

/** Parse an EIP-712 encodeType string "Order(uint32 account,uint8 side,...)". */
export function parseTypeString(text) {
  const m = /^(\w+)\((.*)\)$/.exec(text.trim());
  if (!m) throw new Error(`bad EIP-712 type string: ${text}`);
  const fields = m[2] === "" ? [] : m[2].split(",").map((f) => {
    const [type, name] = f.trim().split(/\s+/);
    return { name, type };
  });
  return { primary: m[1], fields };
}

/** Build ethers' {types, domain} from the info document (type strings or field lists). */
export function eip712FromInfo(info) {
  const e = info.eip712 ?? info;
  const d = e.domain;
  const domain = {
    name: d.name,
    version: String(d.version),
    chainId: BigInt(d.chainId ?? d.chain_id),
    verifyingContract: getAddress(d.verifyingContract ?? d.verifying_contract),
  };
  const types = {};
  const src = e.types ?? e.type_strings ?? {};
  for (const [name, def] of Object.entries(src)) {
    if (name === "EIP712Domain") continue;
    if (typeof def === "string") types[name] = parseTypeString(def).fields;
    else types[name] = def.map((f) => (Array.isArray(f) ? { name: f[0], type: f[1] } : { name: f.name, type: f.type }));
  }
  return { domain, types };
}

export class DemoWallet {
  constructor(storage = window.localStorage) {
    this.storage = storage;
    let key = storage.getItem(KEY);
    if (!key || !/^0x[0-9a-fA-F]{64}$/.test(key)) {
      key = Wallet.createRandom().privateKey;
      storage.setItem(KEY, key);
    }
    this.wallet = new Wallet(key);
    this.address = this.wallet.address;
    this.eip712 = null;
  }

  static reset(storage = window.localStorage) {
    storage.removeItem(KEY);
    return new DemoWallet(storage);
  }

  configure(info) {
    this.eip712 = eip712FromInfo(info);
  }

  /** Sign `message` (integers as BigInt/number/decimal strings) as `primaryType`. */
  async sign(primaryType, message) {
    if (!this.eip712) throw new Error("wallet not configured: GET /api/v1/info first");
    const { domain, types } = this.eip712;
    if (!types[primaryType]) throw new Error(`unknown EIP-712 type ${primaryType}`);
    const one = { [primaryType]: types[primaryType] };
    return this.wallet.signTypedData(domain, one, message);
  }

  /** The EIP-712 digest the node will recover from (for display and tests). */
  digest(primaryType, message) {
    const { domain, types } = this.eip712;
    return TypedDataEncoder.hash(domain, { [primaryType]: types[primaryType] }, message);
  }
}
