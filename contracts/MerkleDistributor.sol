// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title One airdrop: claims against a Merkle root in the OpenZeppelin StandardMerkleTree format.
/// @notice A leaf is keccak256(bytes.concat(keccak256(abi.encode(account, amount)))). Each account claims
/// once (a bitmap over addresses), until the deadline; after it the admin claws the unclaimed remainder
/// back to the treasury.
contract MerkleDistributor {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    bytes32 public immutable merkleRoot;
    uint256 public immutable claimDeadline;
    address public immutable treasury;
    address public immutable admin;
    uint256 public totalClaimed;
    mapping(uint256 => uint256) private claimedBitmap;

    error AlreadyClaimed(address account);
    error InvalidProof();
    error ClaimWindowClosed();
    error ClaimWindowOpen();
    error NotAdmin();

    event Claimed(address indexed account, uint256 amount);
    event ClawedBack(address indexed treasury, uint256 amount);

    constructor(IERC20 token_, bytes32 merkleRoot_, uint256 claimDeadline_, address treasury_, address admin_) {
        token = token_;
        merkleRoot = merkleRoot_;
        claimDeadline = claimDeadline_;
        treasury = treasury_;
        admin = admin_;
    }

    function isClaimed(address account) public view returns (bool) {
        uint256 key = uint256(uint160(account));
        return claimedBitmap[key >> 8] & (1 << (key & 0xff)) != 0;
    }

    function claim(address account, uint256 amount, bytes32[] calldata proof) external {
        if (block.timestamp > claimDeadline) revert ClaimWindowClosed();
        if (isClaimed(account)) revert AlreadyClaimed(account);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
        if (!MerkleProof.verifyCalldata(proof, merkleRoot, leaf)) revert InvalidProof();
        uint256 key = uint256(uint160(account));
        claimedBitmap[key >> 8] |= 1 << (key & 0xff);
        totalClaimed += amount;
        token.safeTransfer(account, amount);
        emit Claimed(account, amount);
    }

    function clawback() external {
        if (msg.sender != admin) revert NotAdmin();
        if (block.timestamp <= claimDeadline) revert ClaimWindowOpen();
        uint256 remainder = token.balanceOf(address(this));
        token.safeTransfer(treasury, remainder);
        emit ClawedBack(treasury, remainder);
    }
}
