/*
 * interfaces.h - the interfaces a Legato component uses. libavc provides
 * one: le_avc (le_avc_interface.h). Legato programs write
 *
 *     #include "legato.h"
 *     #include "interfaces.h"
 */
#ifndef INTERFACES_H_INCLUDE_GUARD
#define INTERFACES_H_INCLUDE_GUARD

#include "le_avc_interface.h"

#endif /* INTERFACES_H_INCLUDE_GUARD */
