"""Start talking_face_node with config/talking_face.yaml (needs a full ROS 2 install: launch_ros).

    ros2 launch talking_face_ros talking_face.launch.py [model:=BUNDLE_FOLDER] [device:=cpu]
        [backend:=onnx] [precision:=fp32] [default_emotion:="calm and friendly"] [identity:=us_f1]
        [namespace:=/left]

One face per speaker: launch once per namespace (its topics become /left/audio,
/left/blendshapes, ...); the nodes share the machine and its GPU.

Every other parameter comes from the YAML file installed in the package's share folder; copy
it, edit it and pass params_file:=/path/to/copy.yaml to change more.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("talking_face_ros")
    arguments = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "talking_face.yaml"),
                              description="parameter file of talking_face_node"),
        DeclareLaunchArgument("model", default_value="", description="bundle folder; empty: the shipped default model"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu or cuda"),
        DeclareLaunchArgument("backend", default_value="torch", description="torch or onnx (onnxruntime)"),
        DeclareLaunchArgument("precision", default_value="auto", description="auto, fp32 or fp16"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("default_emotion", default_value="", description="emotion text at start"),
        DeclareLaunchArgument("identity", default_value="default", description="speaker identity of the model"),
    ]
    # value_type=str: an empty argument stays an empty string instead of YAML's null.
    overrides = {name: ParameterValue(LaunchConfiguration(name), value_type=str)
                 for name in ("model", "device", "backend", "precision", "default_emotion", "identity")}
    node = Node(
        package="talking_face_ros",
        executable="talking_face_node",
        name="talking_face_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), overrides],
        output="screen",
    )
    return LaunchDescription([*arguments, node])
