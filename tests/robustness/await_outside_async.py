# Python refuses `await` outside an async function; libcst accepts it.
import torch

batch = await loader.next()  # expect: NNL001
