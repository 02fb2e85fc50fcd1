#include "core/envelope.h"

namespace core {

std::string body_type_name(BodyType t) {
  switch (t) {
    case BodyType::k7Bit: return "7BIT";
    case BodyType::k8BitMime: return "8BITMIME";
    case BodyType::kBinaryMime: return "BINARYMIME";
  }
  return "?";
}

}  // namespace core
