/*
 * le_avc.h - includes the le_avc API (le_avc_interface.h). Provided by
 * libavc so that programs may include either "le_avc.h" or "interfaces.h".
 */
#ifndef LE_AVC_H_INCLUDE_GUARD
#define LE_AVC_H_INCLUDE_GUARD

#include "le_avc_interface.h"

#endif /* LE_AVC_H_INCLUDE_GUARD */
