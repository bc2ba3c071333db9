"""The kit's maps against the two CAM libraries, pytorch-grad-cam (`pytorch_grad_cam`) and TorchCAM (`torchcam`), on the
same model, images and target classes (test-only dependencies).

Tolerances: maps are compared after the same normalisation (`norm='minmax'`, the libraries' recipe) with an absolute
tolerance of 1e-4 on [0,1] maps (float32 sums in a different order, epsilons of 1e-7 vs 1e-8, cv2 vs torch bilinear
resizing). Known differences, each checked here rather than hidden:
- TorchCAM's CAM keeps negative values (no ReLU): it equals the kit's raw CAM, min-max normalised.
- TorchCAM's Grad-CAM++ divides a copy of its weights (so the division has no effect) and sums g^3 * A rather than
  sum(A) * g^3: it is a different map and is not compared; pytorch-grad-cam's Grad-CAM++ (eps 1e-6) is.
- pytorch-grad-cam's Score-CAM upsamples masks with align_corners=True and normalises them after upsampling: it agrees
  with the kit's 'libraries' variant (TorchCAM's masks) only approximately (checked: correlation > 0.99).
- Eigen-CAM's sign: pytorch-grad-cam keeps whatever sign numpy's SVD gives; the kit orients the component. The raw
  projections agree up to that sign.
- pytorch-grad-cam differentiates every parameter (`loss.backward()`), the kit only the tap: same gradients.
"""
import numpy as np, pytest, torch, torch.nn.functional as F, torchvision.models as tvm
from wsol_nb.backbones import wrap_model
from wsol_nb.cam import compute_cams, cam_raw, eigencam_raw, gradcampp_raw, finish_maps, _minmax

pgc = pytest.importorskip('pytorch_grad_cam')
torchcam = pytest.importorskip('torchcam.methods')
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

ATOL = 1e-4

@pytest.fixture(scope='module')
def setup():
    torch.manual_seed(0)
    m = tvm.resnet18(num_classes=10).eval()
    for mod in m.modules():   # non-trivial BatchNorm statistics, so that maps are not flat
        if isinstance(mod, torch.nn.BatchNorm2d): mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 2)
    bb = wrap_model(m, 'layer4', input_size=160)
    x = torch.rand(3, 3, 160, 160)
    cls = torch.tensor([1, 4, 7])
    return m, bb, x, bb.normalize(x), cls

def _pgc(cls_, model, layers, xn, cls, **kw):
    with cls_(model=model, target_layers=layers, **kw) as cam:
        return torch.from_numpy(cam(input_tensor=xn, targets=[ClassifierOutputTarget(int(c)) for c in cls]))

def _tc(cls_, model, layer, xn, cls, **kw):
    with cls_(model, target_layer=layer, **kw) as ext:
        scores = model(xn)
        return [c.detach() for c in ext(class_idx=cls.tolist(), scores=scores)]

@pytest.mark.parametrize('method,pgc_name', [('gradcam', 'GradCAM'), ('xgradcam', 'XGradCAM'), ('hirescam', 'HiResCAM'),
                                             ('layercam', 'LayerCAM')])
def test_pytorch_grad_cam(setup, method, pgc_name):
    m, bb, x, xn, cls = setup
    ours, _ = compute_cams(bb, x, cls, method, norm='minmax')
    theirs = _pgc(getattr(pgc, pgc_name), m, [m.layer4], xn, cls)
    assert ours.shape == theirs.shape == (3, 160, 160)
    assert (ours - theirs).abs().max() < ATOL, (method, (ours - theirs).abs().max())

def test_gradcampp_epsilon(setup):
    "pytorch-grad-cam adds 1e-6 to Grad-CAM++'s denominator: with it the maps agree; without it they differ where g^2 ~ 1e-6."
    m, bb, x, xn, cls = setup
    xg = x.clone().requires_grad_()
    f, y = bb.run(xg, ['layer4'])
    g, = torch.autograd.grad(y.gather(1, cls[:, None]).sum(), f['layer4'])
    theirs = _pgc(pgc.GradCAMPlusPlus, m, [m.layer4], xn, cls)
    with_eps = finish_maps(gradcampp_raw(f['layer4'].detach(), g, eps=1e-6), x.shape[-2:], 'minmax')
    assert (with_eps - theirs).abs().max() < ATOL
    ours, _ = compute_cams(bb, x, cls, 'gradcam++', norm='minmax')
    assert (ours - finish_maps(gradcampp_raw(f['layer4'].detach(), g), x.shape[-2:], 'minmax')).abs().max() < 1e-6
    assert (ours - theirs).abs().max() > ATOL     # the epsilon matters on these small gradients (|g| ~ 1e-3)

@pytest.mark.parametrize('method,tc_name', [('gradcam', 'GradCAM'), ('xgradcam', 'XGradCAM'), ('layercam', 'LayerCAM')])
def test_torchcam(setup, method, tc_name):
    m, bb, x, xn, cls = setup
    ours, _ = compute_cams(bb, x, cls, method, norm='minmax', upsample=False)
    theirs, = _tc(getattr(torchcam, tc_name), m, 'layer4', xn, cls)
    assert ours.shape == theirs.shape == (3, 5, 5)
    assert (ours - theirs).abs().max() < ATOL, (method, (ours - theirs).abs().max())

def test_torchcam_cam_without_relu(setup):
    m, bb, x, xn, cls = setup
    theirs, = _tc(torchcam.CAM, m, 'layer4', xn, cls, fc_layer='fc')
    with torch.no_grad(): A = bb.features(x, 'layer4')['layer4']
    raw = cam_raw(A, bb.fc, cls)
    assert (raw < 0).any()                                   # a real difference on these maps ...
    assert (_minmax(raw, 1e-8) - theirs).abs().max() < ATOL   # ... and the only one
    ours, _ = compute_cams(bb, x, cls, 'cam', norm='minmax', upsample=False)
    assert (_minmax(F.relu(raw), 1e-7) - ours).abs().max() < 1e-6

def test_layercam_fusion_torchcam(setup):
    m, bb2, x, xn, cls = setup
    bb = wrap_model(m, ['layer3', 'layer4'], input_size=160)
    ours, _ = compute_cams(bb, x, cls, 'layercam', tap=['layer3', 'layer4'], norm='minmax', upsample=False)
    with torchcam.LayerCAM(m, target_layer=['layer3', 'layer4']) as ext:
        cams = ext(class_idx=cls.tolist(), scores=m(xn))
        fused = torchcam.LayerCAM.fuse_cams([c.detach() for c in cams])
    assert ours.shape == fused.shape == (3, 10, 10)
    assert (ours - _minmax(fused, 1e-7)).abs().max() < ATOL

def test_scorecam(setup):
    m, bb, x, xn, cls = setup
    b3 = wrap_model(m, 'layer3', input_size=160)                     # 256 channels: 256 masked passes for one image
    ours, _ = compute_cams(b3, x[:1], cls[:1], 'scorecam', variant='libraries', norm='minmax', upsample=False, score_batch=64)
    theirs, = _tc(torchcam.ScoreCAM, m, 'layer3', xn[:1], cls[:1], batch_size=64)
    assert (ours - theirs).abs().max() < ATOL
    up = F.interpolate(ours[:, None], size=(160, 160), mode='bilinear', align_corners=False)[:, 0]
    p = _pgc(pgc.ScoreCAM, m, [m.layer3], xn[:1], cls[:1])
    r = np.corrcoef(up.flatten().numpy(), p.flatten().numpy())[0, 1]
    assert r > 0.99, r

def test_eigencam(setup):
    m, bb, x, xn, cls = setup
    with torch.no_grad(): A = bb.features(x, 'layer4')['layer4']
    ours, theirs = eigencam_raw(A), torch.from_numpy(get_2d_projection(A.numpy()))
    for o, t in zip(ours, theirs): assert min((o - t).abs().max(), (o + t).abs().max()) < 1e-4 * o.abs().max()
    om, _ = compute_cams(bb, x, 'top1', 'eigencam', norm='minmax')
    pm = _pgc(pgc.EigenCAM, m, [m.layer4], xn, cls)
    same = [(o * t).sum() >= 0 for o, t in zip(ours, theirs)]
    for i in range(3):
        if same[i]: assert (om[i] - pm[i]).abs().max() < ATOL

def test_vit_gradcam_pytorch_grad_cam():
    torch.manual_seed(0)
    v = tvm.VisionTransformer(image_size=64, patch_size=16, num_layers=3, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=6).eval()
    torch.nn.init.normal_(v.heads.head.weight)
    bb = wrap_model(v, 'encoder.layers.encoder_layer_2.ln_1')
    assert (bb.layout, bb.prefix_tokens, bb.cam_tap) == ('tokens', 1, None)
    x, cls = torch.rand(2, 3, 64, 64), torch.tensor([2, 5])
    def reshape(t): return t[:, 1:, :].reshape(t.shape[0], 4, 4, t.shape[2]).permute(0, 3, 1, 2)
    for method, name in [('gradcam', 'GradCAM'), ('layercam', 'LayerCAM'), ('hirescam', 'HiResCAM')]:
        ours, _ = compute_cams(bb, x, cls, method, norm='minmax')
        theirs = _pgc(getattr(pgc, name), v, [v.encoder.layers[2].ln_1], bb.normalize(x), cls, reshape_transform=reshape)
        assert (ours - theirs).abs().max() < ATOL, method
    with torch.no_grad(): tok = bb.run(x, bb.map_tap, logits=False)[0][bb.map_tap]
    ours, theirs = eigencam_raw(bb.as_map(tok)), torch.from_numpy(get_2d_projection(reshape(tok).numpy()))
    for o, t in zip(ours, theirs): assert min((o - t).abs().max(), (o + t).abs().max()) < 1e-4 * o.abs().max()

def test_timm_models():
    timm = pytest.importorskip('timm')
    torch.manual_seed(0)
    r = wrap_model(timm.create_model('resnet18', pretrained=False, num_classes=5).eval(), 'layer4')
    assert (r.cam_tap, r.layout, r.tap_channels('layer4'), r.tap_stride('layer4')) == ('layer4', 'nchw', 512, 32)
    x = torch.rand(2, 3, 224, 224)
    for method in ['cam', 'gradcam', 'eigencam']:
        m, y = compute_cams(r, x, 'top1', method)
        assert m.shape == (2, 224, 224) and y.shape == (2, 5)
    v = wrap_model(timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=5).eval(), 'blocks.10')
    assert (v.layout, v.prefix_tokens, v.tap_channels('blocks.10'), v.tap_stride('blocks.10')) == ('tokens', 1, 192, 16)
    for method in ['gradcam', 'layercam', 'eigencam']:
        assert compute_cams(v, x[:1], 'top1', method)[0].shape == (1, 224, 224)
    with pytest.raises(ValueError, match='nn.MultiheadAttention'): compute_cams(v, x[:1], 'top1', 'rollout')
    s = wrap_model(timm.create_model('swin_tiny_patch4_window7_224', pretrained=False, num_classes=5).eval(), 'layers.3')
    assert (s.layout, s.tap_channels('layers.3'), s.tap_stride('layers.3')) == ('nhwc', 768, 32)
    assert compute_cams(s, x[:1], 'top1', 'gradcam')[0].shape == (1, 224, 224)
