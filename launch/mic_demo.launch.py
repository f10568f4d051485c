"""A microphone driving the face: mic_publisher + talking_face_node (+ browser_face on request).

    ros2 launch talking_face_ros mic_demo.launch.py [device:=pulse] [rate:=16000] [vad_db:=-40]
        [model:=BUNDLE_FOLDER] [default_emotion:="happy"] [browser:=true]

``ros2 run talking_face_ros mic_publisher --list-devices`` lists the input devices. With
vad_db set, the face idles between utterances; without, it animates everything it hears.
browser:=true also starts browser_face (config/browser_face.yaml) to show the face in a browser.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("talking_face_ros")
    arguments = [
        DeclareLaunchArgument("device", default_value="", description="input device (index or name); empty: default"),
        DeclareLaunchArgument("rate", default_value="16000", description="capture rate in Hz"),
        DeclareLaunchArgument("vad_db", default_value="", description="utterance detector level in dBFS; empty: off"),
        DeclareLaunchArgument("model", default_value="", description="bundle folder; empty: the shipped default model"),
        DeclareLaunchArgument("default_emotion", default_value="", description="emotion text at start"),
        DeclareLaunchArgument("browser", default_value="false", description="also start browser_face"),
    ]
    capture = ["--device", LaunchConfiguration("device"), "--rate", LaunchConfiguration("rate")]
    with_vad = PythonExpression(["'", LaunchConfiguration("vad_db"), "' != ''"])
    mics = [  # one of the two starts: with the utterance detector or without
        Node(package="talking_face_ros", executable="mic_publisher", output="screen",
             arguments=[*capture, "--vad-db", LaunchConfiguration("vad_db")], condition=IfCondition(with_vad)),
        Node(package="talking_face_ros", executable="mic_publisher", output="screen",
             arguments=capture, condition=UnlessCondition(with_vad)),
    ]
    face = Node(
        package="talking_face_ros",
        executable="talking_face_node",
        name="talking_face_node",
        parameters=[os.path.join(share, "config", "talking_face.yaml"),
                    {name: ParameterValue(LaunchConfiguration(name), value_type=str)  # "" stays a string
                     for name in ("model", "default_emotion")}],
        output="screen",
    )
    browser = Node(
        package="talking_face_ros",
        executable="browser_face",
        parameters=[os.path.join(share, "config", "browser_face.yaml")],
        condition=IfCondition(LaunchConfiguration("browser")),
        output="screen",
    )
    return LaunchDescription([*arguments, *mics, face, browser])
