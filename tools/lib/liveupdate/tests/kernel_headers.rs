// SPDX-License-Identifier: GPL-2.0
//! The crate's uapi numbers and layouts against the kernel's own headers: a C program built
//! with the headers of the Linux tree (`LU_KERNEL_SRC`, by default the one `scripts/setup.sh`
//! fetches) prints them, and they must equal the crate's.

use std::path::PathBuf;
use std::process::Command;

use liveupdate::uapi::*;

fn kernel_src() -> PathBuf {
    if let Some(dir) = std::env::var_os("LU_KERNEL_SRC") {
        return dir.into();
    }
    let cache = std::env::var_os("LU_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/rust-liveupdate"))
        })
        .expect("neither LU_CACHE nor HOME is set");
    cache.join("linux-7.3")
}

/// `(C expression, the crate's value)`.
fn expected() -> Vec<(&'static str, u64)> {
    vec![
        ("LIVEUPDATE_IOCTL_TYPE", IOCTL_TYPE.into()),
        ("LIVEUPDATE_SESSION_NAME_LENGTH", SESSION_NAME_LENGTH as u64),
        ("LIVEUPDATE_IOCTL_CREATE_SESSION", IOCTL_CREATE_SESSION),
        ("LIVEUPDATE_IOCTL_RETRIEVE_SESSION", IOCTL_RETRIEVE_SESSION),
        ("LIVEUPDATE_SESSION_PRESERVE_FD", SESSION_PRESERVE_FD),
        ("LIVEUPDATE_SESSION_RETRIEVE_FD", SESSION_RETRIEVE_FD),
        ("LIVEUPDATE_SESSION_FINISH", SESSION_FINISH),
        ("LIVEUPDATE_SESSION_GET_NAME", SESSION_GET_NAME),
        (
            "sizeof(struct liveupdate_ioctl_create_session)",
            size::<SessionByName>(),
        ),
        (
            "sizeof(struct liveupdate_ioctl_retrieve_session)",
            size::<SessionByName>(),
        ),
        ("offsetof(struct liveupdate_ioctl_create_session, name)", 8),
        (
            "sizeof(struct liveupdate_session_preserve_fd)",
            size::<SessionFd>(),
        ),
        (
            "sizeof(struct liveupdate_session_retrieve_fd)",
            size::<SessionFd>(),
        ),
        ("offsetof(struct liveupdate_session_retrieve_fd, token)", 8),
        (
            "sizeof(struct liveupdate_session_finish)",
            size::<SessionFinish>(),
        ),
        (
            "sizeof(struct liveupdate_session_get_name)",
            size::<SessionGetName>(),
        ),
        ("VFIO_DEVICE_GET_REGION_INFO", VFIO_DEVICE_GET_REGION_INFO),
        ("VFIO_DEVICE_RESET", VFIO_DEVICE_RESET),
        ("VFIO_DEVICE_BIND_IOMMUFD", VFIO_DEVICE_BIND_IOMMUFD),
        (
            "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
            VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        ),
        ("VFIO_DEVICE_FEATURE", VFIO_DEVICE_FEATURE),
        (
            "VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA",
            VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA.into(),
        ),
        (
            "VFIO_LIVEUPDATE_DMA_CONTINUES",
            VFIO_LIVEUPDATE_DMA_CONTINUES.into(),
        ),
        (
            "VFIO_LIVEUPDATE_DMA_REQUIRED",
            VFIO_LIVEUPDATE_DMA_REQUIRED.into(),
        ),
        (
            "VFIO_LIVEUPDATE_DMA_UNSUPPORTED",
            VFIO_LIVEUPDATE_DMA_UNSUPPORTED.into(),
        ),
        (
            "VFIO_LIVEUPDATE_DMA_NOT_KEPT",
            VFIO_LIVEUPDATE_DMA_NOT_KEPT.into(),
        ),
        (
            "VFIO_LIVEUPDATE_DMA_NOTHING_MAPPED",
            VFIO_LIVEUPDATE_DMA_NOTHING_MAPPED.into(),
        ),
        ("VFIO_LIVEUPDATE_DMA_TABLES", VFIO_LIVEUPDATE_DMA_TABLES.into()),
        (
            "sizeof(struct vfio_device_feature) + sizeof(struct vfio_device_feature_liveupdate_dma)",
            size::<FeatureLiveupdateDma>(),
        ),
        ("IOMMU_IOAS_ALLOC", IOMMU_IOAS_ALLOC),
        ("IOMMU_IOAS_MAP", IOMMU_IOAS_MAP),
        (
            "sizeof(struct vfio_device_bind_iommufd)",
            size::<vfio_bindings::bindings::vfio::vfio_device_bind_iommufd>(),
        ),
        (
            "sizeof(struct iommu_ioas_map)",
            size::<iommufd_bindings::iommu_ioas_map>(),
        ),
    ]
}

fn size<T>() -> u64 {
    std::mem::size_of::<T>() as u64
}

#[test]
fn uapi_matches_the_kernel_headers() {
    let uapi = kernel_src().join("include/uapi");
    assert!(
        uapi.join("linux/liveupdate.h").is_file(),
        "no Linux 7.3 uapi headers at {} (run scripts/setup.sh, or set LU_KERNEL_SRC)",
        uapi.display()
    );
    let expected = expected();
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/liveupdate.h>\n\
         #include <linux/vfio.h>\n#include <linux/iommufd.h>\nint main(void)\n{\n",
    );
    for (expr, _) in &expected {
        c += &format!("\tprintf(\"%llu\\n\", (unsigned long long)({expr}));\n");
    }
    c += "\treturn 0;\n}\n";
    let dir = std::env::temp_dir().join(format!("liveupdate-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("uapi.c"), dir.join("uapi"));
    std::fs::write(&src, c).unwrap();
    // The kernel's uapi headers first; the C library's for <asm/...>. The source headers keep
    // the annotations headers_install strips.
    let built = Command::new("cc")
        .arg("-D__user=")
        .arg("-I")
        .arg(&uapi)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("running cc");
    assert!(built.success(), "cc failed on {}", src.display());
    let out = Command::new(&exe)
        .output()
        .expect("running the header probe");
    let values: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(values.len(), expected.len());
    for ((expr, ours), theirs) in expected.iter().zip(values) {
        assert_eq!(
            *ours, theirs,
            "{expr}: the crate has {ours:#x}, the kernel {theirs:#x}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
