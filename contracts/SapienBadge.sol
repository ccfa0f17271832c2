// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @dev ERC-5192: minimal soulbound NFTs.
interface IERC5192 {
    event Locked(uint256 tokenId);
    event Unlocked(uint256 tokenId);

    function locked(uint256 tokenId) external view returns (bool);
}

/// @title Sapien badges: soulbound ERC-721 tokens, one per (member, badge).
/// @notice The token id is keccak256(abi.encode(memberId, badgeSlug)), so a retried mint of the same
/// award reverts instead of minting a second token. Tokens never move: every transfer and approval
/// reverts. The platform revokes a badge by burning it.
contract SapienBadge is ERC721, AccessControl, IERC5192 {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    error Soulbound();
    error AlreadyMinted(uint256 tokenId);

    string private baseTokenURI;

    constructor(string memory baseURI_, address admin) ERC721("Sapien Badge", "SBADGE") {
        baseTokenURI = baseURI_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    function tokenIdFor(uint256 memberId, string calldata badgeSlug) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(memberId, badgeSlug)));
    }

    function mint(address to, uint256 memberId, string calldata badgeSlug) external onlyRole(MINTER_ROLE) returns (uint256 tokenId) {
        tokenId = tokenIdFor(memberId, badgeSlug);
        if (_ownerOf(tokenId) != address(0)) revert AlreadyMinted(tokenId);
        _mint(to, tokenId);
        emit Locked(tokenId);
    }

    function burn(uint256 tokenId) external onlyRole(MINTER_ROLE) {
        _burn(tokenId);
    }

    function setBaseURI(string calldata baseURI_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        baseTokenURI = baseURI_;
    }

    function locked(uint256 tokenId) external view returns (bool) {
        _requireOwned(tokenId);
        return true;
    }

    function approve(address, uint256) public pure override {
        revert Soulbound();
    }

    function setApprovalForAll(address, bool) public pure override {
        revert Soulbound();
    }

    /// @dev Mints (from zero) and burns (to zero) pass; a move between two holders reverts.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address) {
        address from = _ownerOf(tokenId);
        if (from != address(0) && to != address(0)) {
            revert Soulbound();
        }
        return super._update(to, tokenId, auth);
    }

    function _baseURI() internal view override returns (string memory) {
        return baseTokenURI;
    }

    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return interfaceId == type(IERC5192).interfaceId || super.supportsInterface(interfaceId);
    }
}
