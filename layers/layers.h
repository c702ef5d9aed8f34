// Everything in layers/ in one include: modules, layers, loss, optimizers, LR schedules.
#pragma once
#include "layers/activation.h"
#include "layers/adamw.h"
#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "layers/lr_schedule.h"
#include "layers/module.h"
#include "layers/optim.h"
#include "layers/pooling.h"
#include "layers/sequential.h"
#include "layers/sgd.h"
