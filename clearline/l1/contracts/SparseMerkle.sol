// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title SparseMerkle
/// @notice Verifies proofs of the positional keccak sparse Merkle trees of
///         `clearline.core.merkle` (DESIGN.md rule 3), bit for bit:
///
///         - a leaf is a 32-byte hash computed by the caller; 32 zero bytes = empty leaf;
///         - an inner node is `keccak256(0x01 || left || right)` (65-byte preimage);
///         - `zeroHash(0) = 0`, `zeroHash(i + 1) = node(zeroHash(i), zeroHash(i))`;
///         - at level i (0 = leaves) bit i of the index chooses the side: 0 = left child;
///         - a proof lists the `depth` siblings bottom-up.
///
///         Compressed proofs omit the siblings that are roots of empty subtrees: bit i of
///         `present` is 1 iff the sibling at level i is given (in order, bottom-up) in
///         `siblings`; a 0 bit means `zeroHash(i)`. A full proof is `present = 2**depth - 1`.
///         `clearline.l1.formats.compress_proof` builds them from `SparseMerkleTree.proof`.
library SparseMerkle {
    uint256 internal constant MAX_DEPTH = 64;

    error InvalidDepth(uint256 depth);
    error InvalidIndex(uint256 index, uint256 depth);
    error InvalidProofLength(uint256 expected, uint256 given);

    /// @dev ZERO_HASHES[h] (h = 0..64), 32 bytes each: clearline.core.merkle.ZERO_HASHES.
    bytes internal constant ZERO_HASHES =
        hex"0000000000000000000000000000000000000000000000000000000000000000" // 0
        hex"c07a1e8b7e0057673fdc2affe190d8a960c5fe615663f27b7ce84f3d93ef92a6" // 1
        hex"fd47517474a597637d54038a0663d1d03b931b238de06b73e3c12cf443de6e8d" // 2
        hex"47a8f5e8fa70be2760378067c9c6d410dd96be07820b4230c11254c7ff10c298" // 3
        hex"aed19ca4bfe2365b1b33fa94744cd0c6a2d550506c7e7efc073879cb79459b9a" // 4
        hex"6e6998a7da8b2db5c98eb853099d8caec63797b5283b7dac37b2ffb630a86e24" // 5
        hex"181c19735bff23b55bc295fc0b60c1c5c7288209b261a08e26924598ce72404e" // 6
        hex"ecb408b290ab2920e63611ef1e8ca964aebb66ea5739f19d24b92094f28e44f8" // 7
        hex"294bf9785e1391d24d52abf915636a73bdaa12ed29e85e21dae14c09d0f2e34b" // 8
        hex"cf7e37a934683edec795e3529db8fac0863519c2419ba24c0f6e4efa86ec7d1a" // 9
        hex"72ce48cca9bc743fed84a0bdc00ad2c5b540323849c982f671a9bd8d52d15719" // 10
        hex"0e2d7d0b695fdcd9dc6c54313ae652218375c3358d34ade3dcc49dda05c0db10" // 11
        hex"a0a786a71d24007a23f5ce21e6997a305baeefaf348937a8b74974cb039c10c8" // 12
        hex"0628cb6496193e6a55ece4a8240384e142273eeb9cc4bdae680f971fd1929f10" // 13
        hex"2c3b833a3ca9d6f02055871655dd18f003a279f84a334bf6050899a9bc1cedc3" // 14
        hex"1a6c5e9fd899efca64c2aca6243434b423d791f92a839c0c92ce0a5a51a07234" // 15
        hex"a9942b0fabdf9bf32241f8245eb26737ffbd91822ac484ae857fc35d21fb652f" // 16
        hex"7e4206a110a8721cc68455c35400b056251398dfcf98b04aeee19549bfd2122f" // 17
        hex"bfb429bfebb3aa270012d8063896d205bfd8ce116e4a304335bd59e9471f9fcc" // 18
        hex"e22fa8fff28cfb1f3664382ced6d3f1d634ef2851c10b1dce18c57c957985bf9" // 19
        hex"d29bf231e30afb5cd1bc01d214e905c60c87533bf967a94877b3843bb0bdef5d" // 20
        hex"146d57f70bcb580465116619359a35ece364f17e8d56524b5eee8bf6b8ebfdf6" // 21
        hex"cdbc0759e847f96beb000c3cc51e30f8b2ccac5dcc5c409fea938a3345f8b603" // 22
        hex"86e4b0792326c35995f1563b0d8f99fc38b0348a356e149c04b2783d5bd4cfb8" // 23
        hex"45965170d4d5afdbc7dd54ef3beb044e3a61bdc1a96a4d31beaaee6b75a3f063" // 24
        hex"b4603e46f0de988e62ff27b69f4d393a18f5ed31ea265fee69e73dc4eeddc902" // 25
        hex"b394b29ffe4175348b892c892e0eee5e565c83ebbe247de17cd9bf999d75d2b7" // 26
        hex"ad44e31db4754e01afbb20b8aceb34ce5ef195a9701a7115326091c4fedb5a44" // 27
        hex"0bf2ca8aa236c35d3e7bd0ba97c8e772194462c90b5bb6caea4774e4100e95ef" // 28
        hex"de0aa4f414066517b910862d802e616c418bf24150940c3b74b46e6a4e84b15a" // 29
        hex"5368cf00e43190f04a959a2bfd87d648b02bb4494a00b755c1198da350e04cdb" // 30
        hex"223c1c9f16dfa65bdc98bd2ff419b6f1c47596c3f1eed71c5a3d3c2a3c33f99b" // 31
        hex"7c1d0e8a93ea9c09cc13b91ead8f72de66a33cb695c30934dc2d75bffac1248e" // 32
        hex"84a5ab13be872cab2b2f255f8bf8c31afede9a2132358af739d6ff5b3d3aba8a" // 33
        hex"7b70a898984258b3a577e2a4f6567485f24ade265b5dc9cdb0b6760717e15c96" // 34
        hex"f97bd2266414b0c1cfd6865b52489a9dc155de0e4b3c2e33b893ea00297e2091" // 35
        hex"928b8aede9f36ae1545d41045217da1a914002fe495eda4a346321ff72f7de75" // 36
        hex"d6a170a7ceb2d7c532b3d67f384e917c93a833dd68901df8f111dd1ea4313109" // 37
        hex"8a51e6a5d37f725795d995a22ba1ae9dc23bee4f8f5b280fa15a38fb31d68d99" // 38
        hex"8e6bf8242229c66c52f0f0952a580ef685a054b75cd845d7e2314142e0773ac4" // 39
        hex"823a8bcce6715a9244cc3a24e801f4a6d30ae32503eb017a568d015e75d1c44e" // 40
        hex"44aa45fba237d98181d5904a354aece2cd758eea6d0c396f70e66ffd2b37fa0f" // 41
        hex"7a20ea3311156ed3f2faf8fbfaf95aed7ac96bbf55ee12307d3759d6d5540436" // 42
        hex"e54d294436d4b4213a699ad812fd463df375b3db025366939cb85bc2bf83ea50" // 43
        hex"907a4ebf668a9886acf0997897267dd0c38121b79eb47d814c6a77654f303b21" // 44
        hex"93850d0bf851fedbab104428ad96595970d66d89cf77e5b3af1a6d36c8a66cea" // 45
        hex"798173e07e824386571518817f182661d2411a714fd068f734379ebcb561d6ab" // 46
        hex"283b54354b6329e9b682abfcb5b049cb2643dd44d1993bab43387286cdeb5457" // 47
        hex"59ebb3237689d0a5ec5019b17cd51ff8c43d39a9e28ccae606b6ca72ca7dbe9d" // 48
        hex"93c04aaeb1ced359292d60725266b292bbcd35fb7bfb5cf31adf2599c280d4fa" // 49
        hex"68ca70cb09d641dd321587099f4fc4621515403fb819e3e10bd2dd7ac99bed65" // 50
        hex"3748729c1ed34445b3ac34c5820252e559fc807b0ad01b939fdc664da906e82f" // 51
        hex"8c4b2526b9b2c8f40ef73b371f68516ded669c2f3865530305a6c966135112fb" // 52
        hex"66502a834cbae36adaa931fa69cf3b871bb2cba0b7b19ef0b32a79749cebc5cc" // 53
        hex"01e3bdddaeb8569387d3393006c7e76b2c1e19a6b34407fe02e84a8b268bd308" // 54
        hex"40476d1e76e3113a51574783fa98fda4d502432fea341018d5750e298f40987d" // 55
        hex"b8e648fd0d85f735d6ca1695744fe1dca29b3e1155602100709832ec77514320" // 56
        hex"c0f826dce87e4334165b2eb337ae090ed4dcc5dfb3d28ced71d2803ca94da2e8" // 57
        hex"6ce61a5a410096df66b1ae34e2d9353d860464391c9388720959243135ed5867" // 58
        hex"a0de83ca5da5011f506c1d0aa7ef4658597046fc2788c8278414c66ddaaf8f5e" // 59
        hex"fbd395a5fce08fa713e444271a888c316821a93dda9be4ab363e38c4aa00e9bf" // 60
        hex"772aaacc6e04eed663748254af6b5786203c50864e1a795299e2c192f9fc9e1c" // 61
        hex"fc61e5bbe91ee3842bb115181dc0c0384c4d1523669d4cc79f1b3ebeb03023a8" // 62
        hex"503263743bfa5b3fd2f84236038b900617fb270f647e416f4dfbad721ce3dd82" // 63
        hex"a82b408e2e0c2ad922f3092f9af18b07986707e1fa6fc1668b3fcc4b58db57af"; // 64

    /// @notice The root of an empty subtree of height `height` (0..64).
    function zeroHash(uint256 height) internal pure returns (bytes32 z) {
        if (height > MAX_DEPTH) revert InvalidDepth(height);
        bytes memory zs = ZERO_HASHES;
        assembly ("memory-safe") {
            z := mload(add(zs, shl(5, add(height, 1))))
        }
    }

    function _check(uint256 depth, uint256 index) private pure {
        if (depth == 0 || depth > MAX_DEPTH) revert InvalidDepth(depth);
        if (index >> depth != 0) revert InvalidIndex(index, depth);
    }

    /// @notice The root implied by `leaf` at `index` and its `depth` bottom-up `siblings`
    ///         (clearline.core.merkle.root_from_proof).
    function rootFromProof(uint256 depth, uint256 index, bytes32 leaf, bytes32[] calldata siblings)
        internal
        pure
        returns (bytes32 h)
    {
        _check(depth, index);
        if (siblings.length != depth) revert InvalidProofLength(depth, siblings.length);
        h = leaf;
        assembly ("memory-safe") {
            let p := mload(0x40) // scratch beyond the free memory pointer (not allocated)
            mstore8(p, 0x01)
            let l := add(p, 1)
            let r := add(p, 33)
            for { let i := 0 } lt(i, depth) { i := add(i, 1) } {
                let s := calldataload(add(siblings.offset, shl(5, i)))
                switch and(shr(i, index), 1)
                case 0 { mstore(l, h) mstore(r, s) }
                default { mstore(l, s) mstore(r, h) }
                h := keccak256(p, 65)
            }
        }
    }

    /// @notice Like `rootFromProof`, with the zero-hash siblings omitted (see `present`).
    function rootFromCompressedProof(
        uint256 depth,
        uint256 index,
        bytes32 leaf,
        uint256 present,
        bytes32[] calldata siblings
    ) internal pure returns (bytes32 h) {
        return rootFromCompressedProof(ZERO_HASHES, depth, index, leaf, present, siblings);
    }

    /// @notice `rootFromCompressedProof` with the zero hashes already in memory (`zs` =
    ///         ZERO_HASHES), for callers that check many proofs in one call.
    function rootFromCompressedProof(
        bytes memory zs,
        uint256 depth,
        uint256 index,
        bytes32 leaf,
        uint256 present,
        bytes32[] calldata siblings
    ) internal pure returns (bytes32 h) {
        _check(depth, index);
        if (present >> depth != 0) revert InvalidIndex(present, depth);
        uint256 used;
        uint256 n = siblings.length;
        h = leaf;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x01)
            let l := add(p, 1)
            let r := add(p, 33)
            for { let i := 0 } lt(i, depth) { i := add(i, 1) } {
                let s
                switch and(shr(i, present), 1)
                case 0 { s := mload(add(zs, shl(5, add(i, 1)))) }
                default {
                    if lt(used, n) { s := calldataload(add(siblings.offset, shl(5, used))) }
                    used := add(used, 1) // past n: reported as a length error below
                }
                switch and(shr(i, index), 1)
                case 0 { mstore(l, h) mstore(r, s) }
                default { mstore(l, s) mstore(r, h) }
                h := keccak256(p, 65)
            }
        }
        if (used != n) revert InvalidProofLength(used, n);
    }
}
