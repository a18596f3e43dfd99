"""Every REST operation, by area, in the order the OpenAPI document lists them."""

from server.contract.operations.conversations import CONVERSATIONS
from server.contract.operations.files import FILES
from server.contract.operations.operation import Operation
from server.contract.operations.service import SERVICE
from server.contract.operations.sharing import SHARING
from server.contract.operations.turns import TURNS

OPERATIONS: tuple[Operation, ...] = (*SERVICE, *CONVERSATIONS, *TURNS, *FILES, *SHARING)
